"""Graph-stage benchmark: spectral radius, control substrates and K at hemibrain-CX and FlyWire size.

Why: the original benchmark builds ``degree_shuffle`` with a Python loop of 10 x E swap attempts (~5 M
for the CX, ~150 M for the whole brain, which it therefore never builds) and estimates radii by a fixed
number of power iterations (docs/departures.md#vectorised-controls, docs/departures.md#spectral-radius).
This script measures what the vectorised builders of ``connectome_bpu.controls`` and the
convergence-checked estimators of ``connectome_bpu.spectral`` cost on this machine, and whether the
whole brain fits in memory.

"Reference-style" (here and in ``bench_training_step.py``) names an implementation written in this
repository in the manner of the original benchmark's code, timed side by side with this project's on
the same machine; the original code base itself is not needed.

Each size gets a random directed graph with lognormal weights (self-loops allowed), scaled to radius
0.95, and a signed copy (30 % of presynaptic neurons inhibitory, 10 % unlabelled). Every step runs in
its own subprocess, so the peak RSS reported (``os.wait4`` of that child) is the step's own, including
the interpreter and the loaded graph (the ``load`` row is that baseline). Seconds cover the step only.

Steps: spectral radius (unsigned: power iteration; signed: ARPACK), ``random``, ``degree_shuffle``,
``weight_shuffle``, ``degree_shuffle_dale`` on the signed copy (each including the rescale to 0.95,
i.e. two radius estimates), ``save_control`` + ``validate_control`` of one control, and K via
``connectome_bpu.depth.estimate_k``. At CX size, a reference-style pure-Python ``degree_shuffle`` loop
is timed on a capped number of attempts and extrapolated linearly to 10 x E_nonself (labelled so).

Usage: python bench/bench_graph.py [--sizes cx,whole] [--reference-attempts 200000]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectome_bpu.controls import _distinct_codes, build_control, save_control, validate_control  # noqa: E402
from connectome_bpu.matrix import matrix_sha256  # noqa: E402
from connectome_bpu.depth import estimate_k  # noqa: E402
from connectome_bpu.spectral import scale_to_radius, spectral_radius  # noqa: E402

from child_steps import comma_choices, in_subprocess, parse_or_run_child

RHO = 0.95
# name: (neurons, edges, sensory fraction, output fraction)
SIZES = {
    "cx": (7_349, 511_930, 0.10, 0.08),
    "whole": (139_255, 15_100_000, 0.05, 0.05),
}
STEPS = ("load", "spectral_unsigned", "spectral_signed", "random", "degree_shuffle", "weight_shuffle",
         "degree_shuffle_dale", "save_and_validate", "estimate_k")
GRAPH_SEED = 0


# ---------------------------------------------------------------------------------------------------
# child side: one step per process
# ---------------------------------------------------------------------------------------------------

def generate(size: str, folder: Path) -> str:
    """Write the scaled primary, its signed copy, the sign labels and the pools of one size."""
    n, edges, sensory_fraction, output_fraction = SIZES[size]
    rng = np.random.default_rng(GRAPH_SEED)
    codes = np.sort(_distinct_codes(rng, n * n, edges))
    raw = sp.csr_matrix((rng.lognormal(1.0, 1.0, edges).astype(np.float32), (codes // n, codes % n)), shape=(n, n))
    primary, _, estimate = scale_to_radius(raw, RHO)
    signs = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=n, p=[0.3, 0.1, 0.6])
    factors = np.where(signs == -1, -1.0, 1.0).astype(np.float32)
    signed = scale_to_radius((raw @ sp.diags(factors)).tocsr(), RHO)[0]
    order = rng.permutation(n)
    n_sensory, n_output = round(sensory_fraction * n), round(output_fraction * n)
    sp.save_npz(folder / "primary.npz", primary, compressed=False)
    sp.save_npz(folder / "signed.npz", signed, compressed=False)
    np.savez(folder / "arrays.npz", signs=signs, sensory=np.sort(order[:n_sensory]),
             output=np.sort(order[n_sensory:n_sensory + n_output]))
    return (f"N={n:,} E={primary.nnz:,} self-loops={int(np.count_nonzero(primary.diagonal())):,} "
            f"raw radius {estimate.radius:.1f}; sensory {n_sensory:,}, output {n_output:,}")


def load(folder: Path) -> tuple[sp.csr_matrix, sp.csr_matrix, dict]:
    with np.load(folder / "arrays.npz") as stored:
        arrays = {key: stored[key] for key in stored.files}
    return sp.load_npz(folder / "primary.npz").tocsr(), sp.load_npz(folder / "signed.npz").tocsr(), arrays


def describe_control(control) -> str:
    return "; ".join(control.notes + [f"radius before {control.spectral_before.radius:.4f} "
                                      f"({control.spectral_before.method}), after {control.spectral_after.radius:.6f}"])


def describe_estimate(estimate) -> str:
    return (f"radius {estimate.radius:.4f} by {estimate.method}, {estimate.iterations} iterations/products, "
            f"tolerance {estimate.tolerance}")


def run_step(step: str, folder: Path) -> str:
    """Run ``step`` on the graph in ``folder``; print one JSON line with seconds and a description."""
    if step == "generate":
        start = time.perf_counter()
        info = generate(folder.name.split("-")[0], folder)
        return json.dumps({"seconds": time.perf_counter() - start, "info": info})
    primary, signed, arrays = load(folder)
    start = time.perf_counter()
    if step == "load":
        info = "graph files loaded (baseline for the peak RSS of every step)"
    elif step == "spectral_unsigned":
        info = describe_estimate(spectral_radius(primary))
    elif step == "spectral_signed":
        info = describe_estimate(spectral_radius(signed))
    elif step == "degree_shuffle_dale":
        info = describe_control(build_control(signed, step, 0, rho_target=RHO, neuron_signs=arrays["signs"]))
    elif step in ("random", "degree_shuffle", "weight_shuffle"):
        info = describe_control(build_control(primary, step, 0, rho_target=RHO))
    elif step == "save_and_validate":
        control = build_control(primary, "weight_shuffle", 0, rho_target=RHO)
        start = time.perf_counter()
        sha = matrix_sha256(primary)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            path = Path(scratch) / "seed0.npz"
            save_control(path, control, primary_sha256=sha, extra_meta={})
            checks = validate_control(path, primary, name="weight_shuffle", seed=0, rho_target=RHO,
                                      primary_sha256=sha, spectral_kwargs={})
            size_mib = path.stat().st_size / 2**20
        passed = sum(line.passed for line in checks)
        info = f"weight_shuffle: {passed}/{len(checks)} checks pass; file {size_mib:.1f} MiB"
    elif step == "estimate_k":
        estimate = estimate_k(primary, arrays["sensory"], arrays["output"])
        info = f"K={estimate.K} raw median {estimate.raw_median} ({estimate.method}, {estimate.sources_used} sources)"
    elif step == "reference_degree_shuffle":
        info = reference_degree_shuffle(primary, int(os.environ["BENCH_REFERENCE_ATTEMPTS"]))
    else:
        raise SystemExit(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
    return json.dumps({"seconds": time.perf_counter() - start, "info": info})


def reference_degree_shuffle(primary: sp.csr_matrix, cap: int) -> str:
    """The original's ``degree_shuffle`` loop (docs/method.md#controls), one Python iteration per attempt,
    timed on ``cap`` attempts.

    Returns JSON-ready text carrying the measured times; the parent extrapolates the loop time linearly
    to 10 x E_nonself attempts (acceptance is ~constant over the run, so per-attempt cost is too).
    """
    start = time.perf_counter()
    coo = primary.tocoo()
    edges = [(int(pre), int(post)) for post, pre in zip(coo.row, coo.col) if post != pre]
    present = set(edges) | {(int(i), int(i)) for i in np.flatnonzero(primary.diagonal())}
    setup = time.perf_counter() - start
    rng = np.random.default_rng(20000)
    total = max(10 * len(edges), 100)
    attempts = min(cap, total)
    accepted = 0
    start = time.perf_counter()
    for _ in range(attempts):
        i = int(rng.integers(len(edges)))
        j = int(rng.integers(len(edges) - 1))
        j += j >= i
        (a, b), (c, d) = edges[i], edges[j]
        if len({a, b, c, d}) < 4 or (a, d) in present or (c, b) in present:
            continue
        present.difference_update({(a, b), (c, d)})
        present.update({(a, d), (c, b)})
        edges[i], edges[j] = (a, d), (c, b)
        accepted += 1
    loop = time.perf_counter() - start
    return json.dumps({"setup": setup, "loop": loop, "attempts": attempts, "total_attempts": total,
                       "accepted": accepted})


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------

def bench_size(size: str, root: Path, reference_attempts: int) -> list[tuple]:
    folder = root / f"{size}-graph"
    folder.mkdir()
    rows = []
    result, rss = in_subprocess(__file__, "generate", folder)
    rows.append((size, "generate graph", result["seconds"], rss, result["info"]))
    print(f"[{size}] generated: {result['info']}", file=sys.stderr, flush=True)
    for step in STEPS:
        result, rss = in_subprocess(__file__, step, folder)
        rows.append((size, step, result["seconds"], rss, result["info"]))
        print(f"[{size}] {step}: {result['seconds']:.2f} s, {rss:.0f} MiB", file=sys.stderr, flush=True)
    if size == "cx":
        result, rss = in_subprocess(__file__, "reference_degree_shuffle", folder,
                                    {"BENCH_REFERENCE_ATTEMPTS": str(reference_attempts)})
        measured = json.loads(result["info"])
        scale = measured["total_attempts"] / measured["attempts"]
        extrapolated = measured["setup"] + measured["loop"] * scale
        rows.append((size, "reference-style degree_shuffle loop (EXTRAPOLATED)", extrapolated, rss,
                     f"measured {measured['attempts']:,} attempts in {measured['loop']:.2f} s "
                     f"({measured['accepted']:,} accepted) + setup {measured['setup']:.2f} s; x{scale:.1f} to "
                     f"{measured['total_attempts']:,} attempts"))
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"{'size':<6} {'step':<52} {'seconds':>9} {'peak RSS MiB':>13}  notes")
    for size, step, seconds, rss, info in rows:
        print(f"{size:<6} {step:<52} {seconds:>9.2f} {rss:>13.0f}  {info}")
    timing = {(size, step): seconds for size, step, seconds, _, _ in rows}
    reference = timing.get(("cx", "reference-style degree_shuffle loop (EXTRAPOLATED)"))
    if reference is not None:
        ours = timing[("cx", "degree_shuffle")]
        print(f"\nCX degree_shuffle: vectorised {ours:.2f} s (including rescale) vs reference-style loop "
              f"{reference:.1f} s (EXTRAPOLATED from a capped run): {reference / ours:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="cx,whole", help="comma-separated subset of: " + ", ".join(SIZES))
    parser.add_argument("--reference-attempts", type=int, default=200_000,
                        help="reference-style loop attempts actually run at CX size (then extrapolated)")
    args = parse_or_run_child(parser, run_step)
    if args is None:
        return
    sizes = comma_choices(parser, args.sizes, SIZES, "size")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_graph_") as root:
        for size in sizes:
            rows += bench_size(size, Path(root), args.reference_attempts)
    print_table(rows)


if __name__ == "__main__":
    main()
