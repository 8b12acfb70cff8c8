"""Low-power deployment proxy: what a frozen sparse BPU core would cost to store and run.

Two kinds of numbers, kept apart on purpose:

* **Counts** (:func:`footprint`, :func:`sequence_ops`, :func:`graph_proxy`): bytes of the recurrent matrix
  stored dense or as CSR, and multiply-accumulates (MACs) per recurrent step and per sequence. They are a
  proxy for energy, not a measurement of it.
* **Timings**: the ``wallclock_latency_ms_per_sequence`` the training jobs recorded, summarised per model
  and split (:func:`latency_by_model`), and a latency per sequence measured here on the CPU with this
  project's own frozen CSR runtime (:func:`measure_latency`).

An older proxy turned a missing graph into a row of zeros, ignored the K microsteps, the batch size and the
adapters, and pooled latency over every model and split. Here a missing graph is an error, K, batch and
adapters are counted, and latency is reported per model and split.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import scipy.sparse as sp
import torch

from .atomic import read_json
from .errors import BPUInputError
from .graph import load_primary
from .matrix import canonical_csr, square_size
from .model_names import CONNECTOME_MODELS
from .models import build_model
from .pools import pool_indices, read_pools
from .tasks import split_plan, task_spec
from .training_job import WALLCLOCK_LATENCY

METADATA_FILE = "graph_metadata.json"
METADATA_KEYS = ("connectome", "N", "estimated_K", "pool_counts", "primary_matrix", "unsigned_edge_count")
# Files ``load_primary`` and the pools need to build the model of a graph cache.
MODEL_FILES = ("matrix_info.json", "adjacency_unsigned.npz", "graph_arrays.npz", "pool_assignments.csv", METADATA_FILE)
LATENCY_KEYS = ["model", "split", "T", "noise_std", "n_train"]
INDEX_BYTES = 4   # int32 column indices and row pointers, as the frozen CSR runtime stores them
# Both connectome model names build the same BPU on the primary matrix; only their label differs.
CONNECTOME_MODEL = CONNECTOME_MODELS[0]


def _positive(value: int, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise BPUInputError(f"{what}: expected a positive integer, got {value!r}")
    return int(value)


def footprint(N: int, E: int, bitwidth: int) -> dict[str, Any]:
    """Bytes and MACs of one recurrent step, dense N x N against CSR with E stored edges.

    Values take ``max(bitwidth // 8, 1)`` bytes (sub-byte widths round up to a byte, since nothing here
    packs them); CSR adds an int32 column index per edge and N + 1 int32 row pointers. A graph with no
    neurons is refused rather than reported as zeros: it is a broken input, not a free deployment.
    """
    N, bitwidth = _positive(N, "N (neurons)"), _positive(bitwidth, "bitwidth")
    if isinstance(E, bool) or int(E) != E or not 0 <= E <= N * N:
        raise BPUInputError(f"E (recurrent edges): expected an integer in [0, N^2 = {N * N}], got {E!r}")
    E = int(E)
    value_bytes = max(bitwidth // 8, 1)
    dense_bytes = N * N * value_bytes
    csr_bytes = E * value_bytes + INDEX_BYTES * E + INDEX_BYTES * (N + 1)
    return {
        "N": N, "recurrent_edges": E, "density": E / (N * N), "bitwidth": bitwidth, "value_bytes": value_bytes,
        "dense_recurrent_bytes": dense_bytes, "sparse_csr_bytes": csr_bytes,
        "dense_recurrent_ops_per_step": N * N, "sparse_recurrent_ops_per_step": E,
        "ops_reduction": N * N / E if E else math.nan, "memory_reduction": dense_bytes / csr_bytes,
    }


def sequence_ops(N: int, E: int, K: int, T: int, batch: int, d_in: int, n_sensory: int, n_output: int,
                 d_out: int) -> dict[str, Any]:
    """MACs of one sequence and of one batch through the BPU, with a dense and a sparse recurrent core.

    Counted, following the shapes of ``models.BPU``: per timestep the input adapter ``W_in`` (n_sensory x
    d_in) once, since the drive is injected only on the first microstep; K recurrent products of N^2 (dense)
    or E (sparse) MACs; the readout ``W_out`` (d_out x n_output) once, after the K-th microstep. The adapters
    cost the same in both cores, so they shrink the whole-sequence reduction below the per-step one.

    Not counted: bias additions, ReLUs, the scatter of the drive onto sensory neurons and the gather of the
    output pool, and index/memory traffic. The runtime also skips the one product on the all-zero state at
    sequence start; it is counted here, an overcount of 1 in T·K products.
    """
    N, K, T = _positive(N, "N (neurons)"), _positive(K, "K (microsteps)"), _positive(T, "T (timesteps)")
    batch = _positive(batch, "batch")
    d_in, d_out = _positive(d_in, "d_in"), _positive(d_out, "d_out")
    n_sensory, n_output = _positive(n_sensory, "n_sensory"), _positive(n_output, "n_output")
    products = T * K
    input_macs = T * n_sensory * d_in
    readout_macs = T * d_out * n_output
    dense = products * N * N + input_macs + readout_macs
    sparse = products * int(E) + input_macs + readout_macs
    return {
        "recurrent_products_per_sequence": products,
        "dense_recurrent_macs_per_sequence": products * N * N,
        "sparse_recurrent_macs_per_sequence": products * int(E),
        "input_adapter_macs_per_sequence": input_macs,
        "readout_macs_per_sequence": readout_macs,
        "dense_macs_per_sequence": dense, "sparse_macs_per_sequence": sparse,
        "dense_macs_per_batch": dense * batch, "sparse_macs_per_batch": sparse * batch,
        "sequence_ops_reduction": dense / sparse,
    }


def _require_files(graph_dir: Path, names: Iterable[str], purpose: str) -> None:
    """Refuse a missing graph cache up front, naming the path and what should be there."""
    if not graph_dir.is_dir():
        raise BPUInputError(f"graph dir {graph_dir} does not exist; expected a graph cache directory "
                            f"(results/<substrate>/graph/) for {purpose}")
    missing = [name for name in names if not (graph_dir / name).is_file()]
    if missing:
        raise BPUInputError(f"graph dir {graph_dir} lacks {', '.join(missing)}, needed for {purpose}")


def _metadata(graph_dir: Path) -> dict:
    metadata = read_json(graph_dir / METADATA_FILE)
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise BPUInputError(f"{graph_dir / METADATA_FILE} lacks key(s) {missing}; expected {list(METADATA_KEYS)}")
    return metadata


def _primary_matrix(graph_dir: Path, metadata: Mapping[str, Any]) -> sp.csr_matrix:
    """The matrix the models run on (signed or unsigned, as the graph cache says), checked against the metadata.

    It is rebuilt from the cache's declared files (``load_primary``), as training does. A matrix whose size or
    edge count disagrees with ``graph_metadata.json`` is a stale cache: counting it would report one graph under
    another's name.
    """
    missing = [name for name in ("matrix_info.json", "adjacency_unsigned.npz", "graph_arrays.npz")
               if not (graph_dir / name).is_file()]
    if missing:
        raise BPUInputError(f"{graph_dir}: missing {', '.join(missing)}; expected a graph cache written by the "
                            "matrices rule")
    matrix = canonical_csr(load_primary(graph_dir).matrix)
    n = square_size(matrix)
    if n != metadata["N"] or matrix.nnz != metadata["unsigned_edge_count"]:
        raise BPUInputError(f"{graph_dir}: primary matrix has N={n}, edges={matrix.nnz} but {METADATA_FILE} says "
                            f"N={metadata['N']}, unsigned_edge_count={metadata['unsigned_edge_count']}")
    return matrix


def graph_proxy(graph_dir: str | Path, bitwidths: Sequence[int], *, task_dims: tuple[int, int], T: int,
                batch: int) -> list[dict[str, Any]]:
    """One row per bitwidth (in the given order): the footprint and the per-sequence MACs of a graph cache.

    ``task_dims`` is the task's (input_dim, output_dim); K and the pool sizes come from the metadata. Rows
    carry every :func:`footprint` and :func:`sequence_ops` key plus graph_dir, connectome, primary_matrix,
    K, T, batch, d_in, d_out, n_sensory and n_output.
    """
    graph_dir = Path(graph_dir)
    _require_files(graph_dir, [METADATA_FILE], "the low-power proxy")
    metadata = _metadata(graph_dir)
    matrix = _primary_matrix(graph_dir, metadata)
    N, E, K = int(matrix.shape[0]), int(matrix.nnz), int(metadata["estimated_K"])
    d_in, d_out = task_dims
    pools = metadata["pool_counts"]
    dims = {"K": K, "T": T, "batch": batch, "d_in": d_in, "d_out": d_out,
            "n_sensory": int(pools["sensory"]), "n_output": int(pools["output"])}
    ops = sequence_ops(N, E, **dims)
    identity = {"graph_dir": str(graph_dir), "connectome": metadata["connectome"],
                "primary_matrix": metadata["primary_matrix"]}
    return [{**identity, **footprint(N, E, bits), **dims, **ops} for bits in bitwidths]


def latency_by_model(by_seed: pd.DataFrame, source: str = "metrics table") -> pd.DataFrame:
    """Mean, min, max and seed count of the jobs' recorded latency per (model, split, T, noise_std, n_train).

    An older proxy averaged latency over every row, so a GRU and a BPU (or a short and a long split) were
    blended into one number; here each group stays apart. Rows without a latency (``mean_predictor`` times
    no forward pass) are left out. ``source`` names the table in error messages.
    """
    missing = [c for c in [*LATENCY_KEYS, "seed", WALLCLOCK_LATENCY] if c not in by_seed.columns]
    if missing:
        raise BPUInputError(f"{source} lacks column(s) {missing}; expected per-seed metrics with "
                            f"{[*LATENCY_KEYS, 'seed', WALLCLOCK_LATENCY]}")
    try:
        latency = pd.to_numeric(by_seed[WALLCLOCK_LATENCY])
    except (TypeError, ValueError) as err:
        raise BPUInputError(f"{source}: column {WALLCLOCK_LATENCY} is not numeric ({err})") from err
    timed = by_seed.assign(**{WALLCLOCK_LATENCY: latency}).dropna(subset=[WALLCLOCK_LATENCY])
    return (timed.groupby(LATENCY_KEYS, sort=True)
            .agg(latency_ms_per_sequence_mean=(WALLCLOCK_LATENCY, "mean"),
                 latency_ms_per_sequence_min=(WALLCLOCK_LATENCY, "min"),
                 latency_ms_per_sequence_max=(WALLCLOCK_LATENCY, "max"),
                 n_seeds=("seed", "nunique"))
            .reset_index())


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else what ``platform`` knows, so timings say where they ran."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _timed_passes(model: torch.nn.Module, inputs: torch.Tensor, repeats: int) -> list[float]:
    """Milliseconds of ``repeats`` forward passes after one untimed warm-up (allocator, kernel selection)."""
    times = []
    with torch.no_grad():
        model(inputs)
        for _ in range(repeats):
            started = time.perf_counter()
            model(inputs)
            times.append((time.perf_counter() - started) * 1000.0)
    return times


def measure_latency(graph_dir: str | Path, task_cfg: Mapping[str, Any], *, batch: int, repeats: int,
                    threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Latency per sequence of the frozen connectome BPU, measured on this machine's CPU.

    The model is the one the training jobs build (``models.build_model`` on the primary matrix, pools and
    K of the graph cache) on the sparse CSR runtime, fed random inputs of the task's width and training
    length. The median over ``repeats`` passes divided by ``batch`` is reported; the median resists the
    occasional descheduled pass. The torch thread count is restored afterwards.
    """
    graph_dir = Path(graph_dir)
    batch, repeats, threads = _positive(batch, "batch"), _positive(repeats, "repeats"), _positive(threads, "threads")
    _require_files(graph_dir, MODEL_FILES, "building the BPU whose latency is measured")
    K = int(_metadata(graph_dir)["estimated_K"])
    spec = task_spec(task_cfg)
    T = split_plan(task_cfg)[0].T
    primary = load_primary(graph_dir)
    sensory, _, output = pool_indices(read_pools(graph_dir / "pool_assignments.csv"))
    model = build_model(CONNECTOME_MODEL, W=primary.matrix, sensory_idx=sensory, output_idx=output, K=K,
                        input_dim=spec.input_dim, output_dim=spec.output_dim, seed=seed, train_mode="frozen",
                        runtime="sparse", device="cpu",
                        dense_max_neurons=0)   # the sparse runtime never builds a dense matrix
    model.eval()
    inputs = torch.randn(batch, T, spec.input_dim, generator=torch.Generator().manual_seed(seed))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times = _timed_passes(model, inputs, repeats)
    finally:
        torch.set_num_threads(previous_threads)
    median = statistics.median(times)
    return {
        "graph_dir": str(graph_dir), "connectome": primary.info["connectome"], "model": CONNECTOME_MODEL,
        "runtime": model.runtime, "N": int(primary.matrix.shape[0]), "recurrent_edges": int(primary.matrix.nnz),
        "K": K, "T": T, "batch": batch, "d_in": spec.input_dim, "d_out": spec.output_dim, "threads": threads,
        "repeats": repeats, "ms_per_batch_median": median, "ms_per_batch_min": min(times),
        "ms_per_sequence": median / batch, "torch_version": torch.__version__, "cpu_model": cpu_model(),
    }


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def _count(value: int) -> str:
    return f"{int(value):,}"


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def _footprint_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    headers = ["substrate", "N", "edges E", "density", "bits", "dense bytes", "CSR bytes", "dense MACs/step",
               "sparse MACs/step", "ops reduction", "memory reduction"]
    body = [(r["connectome"], _count(r["N"]), _count(r["recurrent_edges"]), f"{100 * r['density']:.3f} %",
             r["bitwidth"], _count(r["dense_recurrent_bytes"]), _count(r["sparse_csr_bytes"]),
             _count(r["dense_recurrent_ops_per_step"]), _count(r["sparse_recurrent_ops_per_step"]),
             _ratio(r["ops_reduction"]), _ratio(r["memory_reduction"])) for r in rows]
    return ["## Recurrent matrix: memory and MACs per recurrent step", ""] + _table(headers, body)


def _sequence_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per graph: MACs do not depend on the bitwidth."""
    per_graph = {r["graph_dir"]: r for r in rows}.values()
    headers = ["substrate", "K", "T", "batch", "input adapter", "readout", "recurrent dense MACs/seq",
               "recurrent sparse MACs/seq", "adapter MACs/seq", "dense MACs/seq", "sparse MACs/seq",
               "sparse MACs/batch", "reduction/seq"]
    body = [(r["connectome"], r["K"], r["T"], r["batch"], f"{r['d_in']} -> {r['n_sensory']}",
             f"{r['n_output']} -> {r['d_out']}", _count(r["dense_recurrent_macs_per_sequence"]),
             _count(r["sparse_recurrent_macs_per_sequence"]),
             _count(r["input_adapter_macs_per_sequence"] + r["readout_macs_per_sequence"]),
             _count(r["dense_macs_per_sequence"]), _count(r["sparse_macs_per_sequence"]),
             _count(r["sparse_macs_per_batch"]), _ratio(r["sequence_ops_reduction"])) for r in per_graph]
    return (["## MACs per sequence (K microsteps per timestep, adapters included)", "",
             "Per timestep: the input adapter once (the drive enters on the first microstep), K recurrent "
             "products, the readout once. Biases, ReLUs and index traffic are not counted.", ""]
            + _table(headers, body))


def _latency_section(latency: pd.DataFrame) -> list[str]:
    lines = ["## Latency recorded by the training jobs, per model and split", "",
             "Each job times one validation-length batch once after training and writes that value on every "
             "split row it reports, so the `T` column is the split's length, not the timed one. Values are "
             "wall-clock times of the machine that ran the job.", ""]
    if latency.empty:
        return lines + ["No training-job latency is available.", ""]
    # Tables from several experiments carry an ``experiment`` column; the same model name differs between them.
    source = latency["experiment"] if "experiment" in latency else pd.Series([""] * len(latency), index=latency.index)
    headers = ["experiment", "model", "split", "T", "noise_std", "n_train", "mean ms/seq", "min ms/seq",
               "max ms/seq", "seeds"]
    body = [(experiment, r.model, r.split, r.T, r.noise_std, r.n_train, f"{r.latency_ms_per_sequence_mean:.4g}",
             f"{r.latency_ms_per_sequence_min:.4g}", f"{r.latency_ms_per_sequence_max:.4g}", r.n_seeds)
            for experiment, r in zip(source, latency.itertuples(index=False))]
    return lines + _table(headers, body)


def _measured_section(measured: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Latency measured on this CPU (frozen CSR runtime, inference only)", ""]
    if not measured:
        return lines + ["No CPU measurement was made.", ""]
    headers = ["substrate", "runtime", "N", "edges E", "K", "T", "batch", "threads", "repeats",
               "median ms/seq", "CPU", "torch"]
    body = [(m["connectome"], m["runtime"], _count(m["N"]), _count(m["recurrent_edges"]), m["K"], m["T"],
             m["batch"], m["threads"], m["repeats"], f"{m['ms_per_sequence']:.4g}", m["cpu_model"],
             m["torch_version"]) for m in measured]
    return lines + _table(headers, body)


INTERPRETATION = [
    "## Interpretation", "",
    "- `ops reduction` = N^2 / E: how many fewer multiply-accumulates one recurrent step needs when only the "
    "stored edges are multiplied instead of the full N x N matrix. `reduction/seq` is the same ratio over a "
    "whole sequence, adapters included, so it is lower.",
    "- `memory reduction` = dense bytes / CSR bytes at the given bitwidth; CSR pays 4 bytes of column index per "
    "edge plus N + 1 row pointers, so the reduction falls as the values get narrower.",
    "- Not modelled: the cost of moving indices and irregular memory access on real hardware, nonlinearities, "
    "biases, the scatter/gather of the pools, the training pass, and any energy figure at all.",
    "- Recommendation: measure joules per sequence on the target hardware (a CPU with power counters, an embedded "
    "board, neuromorphic hardware) before claiming an energy saving; these counts only bound the arithmetic.",
    "",
]


def low_power_report_markdown(rows: Sequence[Mapping[str, Any]], latency: pd.DataFrame,
                              measured: Sequence[Mapping[str, Any]]) -> str:
    """The report: ``graph_proxy`` rows, ``latency_by_model`` table and ``measure_latency`` results."""
    lines = ["# Low-power sparse deployment proxy", "",
             "These numbers are a proxy computed from matrix sizes, edge counts and operation counts, plus "
             "wall-clock timings on general-purpose processors. They are not a hardware energy measurement and "
             "do not show that any device would use less energy.", ""]
    lines += _footprint_section(rows) + _sequence_section(rows)
    lines += _latency_section(latency) + _measured_section(measured) + INTERPRETATION
    return "\n".join(lines)
