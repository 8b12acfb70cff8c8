"""FlyWire normalisation benchmark: time and peak memory of turning release 783-sized files into exports.

Why: the real ``proofread_connections_783.feather`` has 16,847,997 rows (pre, post, neuropil) over
139,255 proofread neurons, and the ``flywire_*`` export rule has to run on a 24 GiB machine. This script
builds files of that size and measures what ``connectome_bpu.sources.flywire`` costs on them.

The synthetic release: 139,255 distinct 18-digit root ids (saved as an int64 ``.npy``), 15,091,983
distinct directed (pre, post) pairs drawn uniformly (the published aggregated edge count), spread over
16,847,997 rows by giving enough pairs 2-4 distinct neuropils (of 78 names: the 10 optic ones, the 8 MB
ones and 60 others; a pair's first neuropil is optic with probability 0.537, so about 53 % of the rows
are optic, as in release 783); ``syn_count`` int32 >= 1, six float32 transmitter columns summing to 1,
neuropil as a string column, written with pyarrow's Feather defaults (LZ4, 64 Ki-row record batches).
Rows are shuffled, the worst case for the per-batch reduction (no pair repeats within a batch). Uniform
pairs are not FlyWire's degree distribution, but the normalisation's cost depends on row and pair counts,
not on the graph's shape; with uniform pairs every neuron has optic rows, so the optic body set is all
139,255 ids (release 783: 96,816), the most expensive case for the second pass. ``--scale`` shrinks the
row and pair counts (never the id count), for a side that does not fit the machine at full size.

Every step runs in its own subprocess; its peak RSS (``os.wait4`` of that child, interpreter included)
is reported beside its wall time. Steps:

* ``baseline``: imports only (the RSS floor of every other step);
* ``normalise_whole``: :func:`normalise_whole` (one streamed pass);
* ``export_whole``: :func:`write_flywire_exports` for ``flywire_whole``: MD5 + sha256 of both files,
  normalisation, and the CSVs + provenance written through ``write_export_set``;
* ``normalise_mushroom_body``: :func:`normalise_mushroom_body` (two streamed passes);
* ``normalise_optic_lobe``: :func:`normalise_optic_lobe`, the same two passes over the optic neuropils;
* ``cap_optic_lobe``: the same with ``max_neurons`` 20,000. Uniform random pairs give no neuron a clear
  outside input, so the pool thresholds are set to 0 here (every neuron with a larger outside share of its
  input than of its output is an input): the step measures the cap's cost, not a meaningful selection;
* ``pandas_optic_lobe``: the same selection written the way the original benchmark code works: the
  whole table loaded into pandas, rows filtered with ``isin`` on the neuropil, then ``groupby`` sums per
  (pre, post) pair and per neuron (no transmitter vote and no roi_counts, so it does less work).

Usage: python bench/bench_flywire_normalise.py [--steps baseline,normalise_whole,...] [--keep DIR] [--scale F]
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

from child_steps import comma_choices, in_subprocess, parse_or_run_child

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N_IDS = 139_255
ROWS = 16_847_997
PAIRS = 15_091_983
N_NEUROPILS = 78
RELEASE = "bench"
STEPS = ("baseline", "normalise_whole", "export_whole", "normalise_mushroom_body", "normalise_optic_lobe",
         "cap_optic_lobe", "pandas_optic_lobe")
CAP = 20_000
SEED = 0
OPTIC_PAIR_SHARE = 0.537   # a pair's first neuropil is optic this often: about 53 % of the rows, as in 783
SCALE_VARIABLE = "BENCH_FLYWIRE_SCALE"   # how the parent tells the generating child the --scale


# ---------------------------------------------------------------------------------------------------
# child side
# ---------------------------------------------------------------------------------------------------

def _distinct(rng: np.random.Generator, high: int, count: int) -> np.ndarray:
    """``count`` distinct integers in [0, high), in random order (draw, dedupe, top up)."""
    values = np.empty(0, np.int64)
    while values.size < count:
        values = np.unique(np.concatenate([values, rng.integers(0, high, int((count - values.size) * 1.05) + 16)]))
    return rng.permutation(values)[:count]


def generate(folder: Path) -> str:
    """Write the root ids, the connections file and the checksums the export step verifies against."""
    import pyarrow as pa
    import pyarrow.feather as feather

    from connectome_bpu.sources.download import md5_file
    from connectome_bpu.sources.flywire import (MB_NEUROPILS, OPTIC_NEUROPILS, TRANSMITTERS, connections_name,
                                                root_ids_name)

    scale = float(os.environ.get(SCALE_VARIABLE, "1"))
    rows_total, pairs_total = round(ROWS * scale), round(PAIRS * scale)
    rng = np.random.default_rng(SEED)
    ids = np.sort(720575940_000_000_000 + _distinct(rng, 10**10, N_IDS))
    roots = folder / root_ids_name(RELEASE)
    np.save(roots, ids)

    codes = _distinct(rng, N_IDS * N_IDS, pairs_total)
    extra = rows_total - pairs_total
    per_pair = rng.integers(2, 5, extra)                       # neuropils of a multi-neuropil pair
    multi = int(np.searchsorted(np.cumsum(per_pair - 1), extra)) + 1
    per_pair = per_pair[:multi]
    per_pair[-1] -= int(np.sum(per_pair - 1)) - extra          # land exactly on rows_total
    repeats = np.ones(pairs_total, np.int64)
    repeats[:multi] = per_pair
    row_pair = np.repeat(np.arange(pairs_total), repeats)
    first_row = np.cumsum(repeats) - repeats
    named = list(OPTIC_NEUROPILS) + list(MB_NEUROPILS)
    names = named + [f"NP{i:02d}_{'LR'[i % 2]}" for i in range(N_NEUROPILS - len(named))]
    optic = len(OPTIC_NEUROPILS)   # codes 0..optic-1 are the optic neuropils
    start = np.where(rng.random(pairs_total) < OPTIC_PAIR_SHARE, rng.integers(0, optic, pairs_total),
                     rng.integers(optic, N_NEUROPILS, pairs_total))
    neuropil = (start[row_pair] + np.arange(rows_total) - first_row[row_pair]) % N_NEUROPILS   # distinct per pair
    optic_share = float(np.mean(neuropil < optic))
    del first_row, start
    order = rng.permutation(rows_total)
    row_pair, neuropil = row_pair[order], neuropil[order].astype(np.int32)
    del order
    pair_code = codes[row_pair]
    del row_pair, codes
    columns = {
        "pre_pt_root_id": ids[pair_code // N_IDS],
        "post_pt_root_id": ids[pair_code % N_IDS],
        "neuropil": pa.DictionaryArray.from_arrays(neuropil, pa.array(names)).dictionary_decode(),
        "syn_count": np.maximum(1, rng.lognormal(0.7, 0.9, rows_total)).astype(np.int32),
    }
    del pair_code, neuropil
    probabilities = rng.random((rows_total, len(TRANSMITTERS)), dtype=np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for k, column in enumerate(TRANSMITTERS):
        columns[column] = probabilities[:, k].copy()
    del probabilities
    connections = folder / connections_name(RELEASE)
    feather.write_feather(pa.table(columns), connections)
    checksums = {path.name: {"bytes": path.stat().st_size, "md5": md5_file(path)} for path in (roots, connections)}
    (folder / "checksums.json").write_text(json.dumps({"scale": scale, "files": checksums}))
    return (f"{N_IDS:,} ids, {rows_total:,} rows, {pairs_total:,} pairs ({multi:,} with 2-4 neuropils), "
            f"{optic_share:.1%} optic rows; feather {connections.stat().st_size / 2**20:.0f} MiB")


def pandas_optic_lobe(roots: Path, connections: Path) -> tuple[int, int]:
    """The optic selection as the original benchmark code does such a step: everything in pandas.

    Returns (neurons, aggregated edges) so the caller can check it found what the streamed version found.
    """
    import pandas as pd

    from connectome_bpu.sources.flywire import NEUROPIL, OPTIC_NEUROPILS, POST, PRE, SYN

    ids = np.load(roots).astype(np.int64)
    frame = pd.read_feather(connections)   # the whole table, every column
    frame = frame[frame[PRE].isin(ids) & frame[POST].isin(ids)]
    optic = frame[frame[NEUROPIL].isin(OPTIC_NEUROPILS)]
    edges = optic.groupby([PRE, POST], sort=True)[SYN].sum()
    body = np.union1d(optic[PRE].unique(), optic[POST].unique())
    touching = frame[frame[PRE].isin(body) | frame[POST].isin(body)]
    totals = pd.DataFrame({"pre": touching.groupby(PRE)[SYN].sum(), "post": touching.groupby(POST)[SYN].sum()})
    return len(totals.reindex(body, fill_value=0)), len(edges)


def run_step(step: str, folder: Path) -> str:
    """Run ``step`` on the files in ``folder``; return one JSON line with seconds and a description."""
    from connectome_bpu.sources.flywire import (connections_name, normalise_mushroom_body, normalise_optic_lobe,
                                                normalise_whole, root_ids_name, write_flywire_exports)

    roots, connections = folder / root_ids_name(RELEASE), folder / connections_name(RELEASE)
    start = time.perf_counter()
    if step == "generate":
        info = generate(folder)
    elif step == "baseline":
        info = "imports only"
    elif step in ("normalise_whole", "normalise_mushroom_body", "normalise_optic_lobe"):
        normalise = {"normalise_whole": normalise_whole, "normalise_mushroom_body": normalise_mushroom_body,
                     "normalise_optic_lobe": normalise_optic_lobe}[step]
        neurons, roi_counts, edges, stats = normalise(roots, connections)
        info = (f"{len(neurons):,} neurons, {len(roi_counts):,} roi rows, {len(edges):,} edges, "
                f"{stats['source_rows']:,} source rows")
    elif step == "cap_optic_lobe":
        neurons, _, edges, stats = normalise_optic_lobe(roots, connections, max_neurons=CAP,
                                                        pools={"tie_margin": 0.0, "min_outside_fraction": 0.0})
        cap = stats["cap"]
        info = (f"{len(neurons):,} of {cap['neurons_before']:,} neurons ({cap['input_neurons_kept']:,} inputs, "
                f"{cap['rounds']} round(s)), {len(edges):,} of {cap['edges_before']:,} edges")
    elif step == "pandas_optic_lobe":
        neurons, edges = pandas_optic_lobe(roots, connections)
        info = f"{neurons:,} neurons, {edges:,} edges (pandas, whole table in memory)"
    elif step == "export_whole":
        out = folder / "exports"
        overrides = json.loads((folder / "checksums.json").read_text())["files"]
        summary = write_flywire_exports(out, "flywire_whole", {roots.name: roots, connections.name: connections},
                                        release=RELEASE, base_url="http://bench.invalid/files",
                                        overrides=overrides)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for p in sorted(out.glob("*.csv")))
        info = f"{summary['neurons']:,} neurons, {summary['connections']:,} edges; {sizes}"
    else:
        raise SystemExit(f"unknown step {step!r}; expected generate or one of {', '.join(STEPS)}")
    return json.dumps({"seconds": time.perf_counter() - start, "info": info})


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of: " + ", ".join(STEPS))
    parser.add_argument("--keep", help="generate into (or reuse) this directory instead of a temporary one")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the release's rows and pairs to generate (default 1: full size)")
    args = parse_or_run_child(parser, run_step)
    if args is None:
        return
    steps = comma_choices(parser, args.steps, STEPS, "step")

    with tempfile.TemporaryDirectory(prefix="bench_flywire_") as scratch:
        folder = Path(args.keep) if args.keep else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        if _generated_scale(folder) != args.scale:
            steps.insert(0, "generate")
        for step in steps:
            load_before = os.getloadavg()[0]
            result, rss = in_subprocess(__file__, step, folder, env={SCALE_VARIABLE: str(args.scale)})
            rows.append((step, result["seconds"], rss, load_before, result["info"]))
            print(f"{step}: {result['seconds']:.1f} s, {rss:.0f} MiB", file=sys.stderr, flush=True)

    print(f"{os.cpu_count()} CPUs, scale {args.scale}; 1-min load average before each step shown (the machine "
          f"may be shared)")
    print(f"{'step':<26} {'seconds':>9} {'peak RSS MiB':>13} {'load':>6}  notes")
    for step, seconds, rss, load, info in rows:
        print(f"{step:<26} {seconds:>9.1f} {rss:>13.0f} {load:>6.2f}  {info}")


def _generated_scale(folder: Path) -> float | None:
    """The scale the files in ``folder`` were generated at (None: nothing, or an older layout, is there)."""
    try:
        return json.loads((folder / "checksums.json").read_text()).get("scale")
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    main()
