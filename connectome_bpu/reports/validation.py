"""``data_validation.md``, ``bpu_validation.md`` and ``control_validation.md``.

Each function takes paths, recomputes what it reports from the stored artifacts (never from flags a
previous step wrote about itself) and returns report lines. Every ``Check`` can fail and carries a stable
``key`` (never rendered); ``tests/test_validation_reports.py`` breaks artifacts, asserts the FAIL of the
check each breakage targets, and fails when any key of this module has no breakage that makes it FAIL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..atomic import read_json
from ..checks import Check, Line, Note, check
from ..controls import validate_control
from ..errors import BPUInputError
from ..exports import load_exports
from ..graph import load_primary
from ..model_names import is_dale, is_stored_control
from ..pools import pool_indices, read_pools
from ..signs import choose_primary
from ..spectral import spectral_radius

EXPORT_NAMES = ("neurons.csv", "roi_counts.csv", "connections.csv")
POOLS = ("sensory", "internal", "output")


def preamble(metadata: dict) -> str:
    """The banner every report on an embedded substrate opens with."""
    if not metadata.get("synthetic"):
        return ""
    return (f"**SYNTHETIC SUBSTRATE** - these numbers come from the procedurally generated "
            f"`{metadata.get('connectome', 'synthetic')}` connectome, not from a real animal.")


def data_validation_lines(exports_dir: str | Path, pools_path: str | Path, metadata_path: str | Path,
                          arrays_path: str | Path) -> list[Line]:
    exports_dir = Path(exports_dir)
    lines: list[Line] = [check((exports_dir / name).is_file() and (exports_dir / name).stat().st_size > 0,
                               f"{name} exists", key="data.export_exists") for name in EXPORT_NAMES]
    try:
        exports = load_exports(exports_dir)
    except BPUInputError as err:
        return lines + [Check(False, f"exports pass schema validation ({err})", key="data.export_schema")]
    neurons, connections = exports.neurons, exports.connections
    lines.append(Check(True, f"exports pass schema validation ({len(neurons)} neurons, {len(connections)} "
                             f"aggregated edges, {len(exports.roi_counts)} roi rows)", key="data.export_schema"))

    pools = read_pools(pools_path)
    neuron_ids = neurons["bodyId"].to_numpy(np.int64)
    pool_ids = pools["bodyId"].to_numpy(np.int64)
    retained = np.isin(neuron_ids, pool_ids).sum()
    lines.append(check(retained == len(neuron_ids) and len(pool_ids) == len(neuron_ids),
                       f"all queried connectome neurons are retained in pool_assignments.csv "
                       f"({len(pool_ids)}/{len(neuron_ids)})", key="data.pools_retained"))
    flags = pools[["is_sensory", "is_internal", "is_output"]].astype(bool).to_numpy()
    labels_match = (np.array(POOLS)[flags.argmax(axis=1)] == pools["pool"].to_numpy()).all()
    lines.append(check((flags.sum(axis=1) == 1).all() and labels_match,
                       "pool assignment is exhaustive and mutually exclusive", key="data.pools_exclusive"))
    lines.append(check(np.array_equal(pools["index"].to_numpy(), np.arange(len(pools))) and
                       np.array_equal(pool_ids, np.sort(pool_ids)),
                       "pool rows are in ascending bodyId order with index = position", key="data.pools_order"))
    counts = pools["pool"].value_counts()
    lines.append(check(counts.get("sensory", 0) > 0 and counts.get("output", 0) > 0,
                       "sensory and output pools are non-empty", key="data.pools_nonempty"))
    lines.append(Note(f"Pool counts: `{ {p: int(counts.get(p, 0)) for p in POOLS} }`"))
    reasons = pools.groupby(["pool", "assignment_reason"]).size()
    lines.append(Note("Assignment reasons: " + ", ".join(f"{p}/{r}: {n}" for (p, r), n in reasons.items())))

    metadata = read_json(metadata_path)
    lines.append(check(metadata["N"] == len(neurons),
                       f"graph metadata N matches neuron export ({metadata['N']} vs {len(neurons)} neurons)",
                       key="data.metadata_n"))
    with np.load(arrays_path) as arrays:
        body_ids = arrays["body_ids"]
    lines.append(check(body_ids.dtype == np.int64 and np.array_equal(body_ids, neuron_ids),
                       f"node order is the ascending int64 bodyId list of the export (dtype {body_ids.dtype})",
                       key="data.node_order"))
    lines.append(check(metadata["raw_edge_count"] == len(connections),
                       f"raw edge count in metadata matches connections.csv ({metadata['raw_edge_count']})",
                       key="data.raw_edge_count"))
    lines.append(check(metadata["unsigned_edge_count"] == len(connections),
                       f"adjacency nonzeros recorded in graph_metadata.json equal the aggregated edges of "
                       f"connections.csv ({metadata['unsigned_edge_count']} nnz)",
                       key="data.edge_count"))
    return lines


def bpu_validation_lines(graph_dir: str | Path, connections_path: str | Path, metadata_path: str | Path,
                         *, k_min: int, k_max: int, spectral_kwargs: dict, sample_edges: int = 500) -> list[Line]:
    metadata = read_json(metadata_path)
    try:
        primary = load_primary(graph_dir)
    except BPUInputError as err:   # a signed primary is refused when the stored matrix is not N x N
        return [Check(False, f"adjacency is square and matches the per-neuron arrays ({err})", key="bpu.square")]
    matrix, n = primary.matrix, metadata["N"]
    lines: list[Line] = [
        check(matrix.shape[0] == matrix.shape[1], f"adjacency is square with shape {matrix.shape}", key="bpu.square"),
        check(matrix.shape == (n, n), f"adjacency shape matches metadata N ({n})", key="bpu.shape_n"),
    ]
    if matrix.shape != (len(primary.body_ids),) * 2:
        return lines   # edge lookups and the spectral radius are undefined on a matrix of the wrong shape
    lines.append(_edge_direction_check(primary.unsigned, primary.body_ids, connections_path, sample_edges))
    recomputed = choose_primary(metadata["signed_policy"], any_signed=bool(np.any(primary.neuron_signs != 0)),
                                coverage=metadata["sign_coverage"], threshold=metadata["sign_coverage_threshold"])
    lines.append(check(recomputed == metadata["primary_matrix"],
                       f"primary matrix choice is documented as `{metadata['primary_matrix']}` and follows the "
                       f"`{metadata['signed_policy']}` policy at coverage {metadata['sign_coverage']:.4f}",
                       key="bpu.primary_choice"))
    lines.append(Note(f"Sign coverage: `{metadata['sign_coverage']:.4f}`"))
    lines.append(Note(f"Spectral target: `{metadata['rho_target']}`, scale: `{metadata['spectral_scale']}` "
                      f"(raw radius {metadata['raw_primary_spectral_radius']:.4f}, "
                      f"{metadata['spectral_estimate']['method']})"))
    estimate = spectral_radius(matrix, **spectral_kwargs)
    lines.append(check(abs(estimate.radius - metadata["rho_target"]) < 1e-3,
                       f"primary matrix spectral radius recomputed from the stored file is {estimate.radius:.6f} "
                       f"(target {metadata['rho_target']}, {estimate.method})", key="bpu.spectral_radius"))
    unsigned_ok = primary.unsigned.nnz == 0 or primary.unsigned.data.min() > 0
    lines.append(check(unsigned_ok, "unsigned adjacency holds only positive weights", key="bpu.unsigned_positive"))
    k, raw_median = metadata["estimated_K"], metadata["k_raw_median"]
    expected_k = int(np.clip(round(raw_median), k_min, k_max))
    lines.append(check(k_min <= k <= k_max and k == expected_k,
                       f"K is clip(round(raw median {raw_median}), {k_min}, {k_max}) = `{k}`", key="bpu.k_clip"))
    return lines


def _edge_direction_check(unsigned: sp.csr_matrix, body_ids: np.ndarray, connections_path: str | Path,
                          sample_edges: int) -> Check:
    """The first ``sample_edges`` rows of connections.csv must sit at W[post, pre]; ids stay int64."""
    sample = pd.read_csv(connections_path, nrows=sample_edges, usecols=["bodyId_pre", "bodyId_post"],
                         dtype={"bodyId_pre": np.int64, "bodyId_post": np.int64})
    pre = np.searchsorted(body_ids, sample["bodyId_pre"].to_numpy(np.int64))
    post = np.searchsorted(body_ids, sample["bodyId_post"].to_numpy(np.int64))
    known = (pre < len(body_ids)) & (post < len(body_ids))
    known[known] &= (body_ids[pre[known]] == sample["bodyId_pre"].to_numpy()[known]) & \
                    (body_ids[post[known]] == sample["bodyId_post"].to_numpy()[known])
    present = np.zeros(len(sample), dtype=bool)
    if known.any():
        present[known] = np.asarray(unsigned[post[known], pre[known]]).ravel() != 0
    return check(len(sample) > 0 and present.all(),
                 f"edge direction is W_rec[post_index, pre_index] across {int(present.sum())}/{len(sample)} sampled edges",
                 key="bpu.edge_direction")


def control_validation_lines(graph_dir: str | Path, control_paths: dict[tuple[str, int], str | Path], *,
                             rho_target: float, spectral_kwargs: dict) -> list[Line]:
    """Check every stored control file of every requested seed: the matrices actually trained
    (docs/departures.md#control-validation)."""
    primary = load_primary(graph_dir)
    signed = primary.info["primary_matrix"] == "signed"
    names = sorted({name for name, _ in control_paths})
    seeds = sorted({seed for _, seed in control_paths})
    lines: list[Line] = [Note(f"Checked controls: {', '.join(names) or 'none'}; seeds: {', '.join(map(str, seeds))}; "
                              f"primary matrix: {primary.info['primary_matrix']}")]
    if signed and not any(is_dale(name) for name in names):
        lines.append(Note("the primary matrix is signed but no Dale-preserving control was requested "
                          "(set controls.dale: true)", label="WARNING"))
    if not signed and any(is_dale(name) for name in names):
        lines.append(Note("the primary matrix is unsigned, so each Dale-preserving control is the same matrix as "
                          "its plain counterpart (every neuron counts as excitatory): they are redundant"))
    for (name, seed), path in sorted(control_paths.items()):
        lines.extend(validate_control(path, primary.matrix, name=name, seed=seed, rho_target=rho_target,
                                      neuron_signs=primary.signs_for_controls,
                                      primary_sha256=primary.info["primary_sha256"],
                                      spectral_kwargs=spectral_kwargs))
    return lines


def control_paths_by_key(paths: Iterable[str | Path]) -> dict[tuple[str, int], Path]:
    """Map ``.../controls/<name>/seed<k>.npz`` paths to (name, seed) keys."""
    out = {}
    for path in map(Path, paths):
        out[(path.parent.name, int(path.stem.removeprefix("seed")))] = path
    return out


def split_lines(split_paths: Sequence[str | Path], task_cfg: dict) -> list[Line]:
    """Every split file matches the plan, and no trajectory appears in two splits (content hashes)."""
    from ..tasks import leakage_overlaps, load_split, shared_by_design, split_fingerprints, split_plan, task_spec

    spec, plan = task_spec(task_cfg), split_plan(task_cfg)
    by_file = {split.filename: split for split in plan}
    fingerprints, lines = {}, []
    for path in map(Path, split_paths):
        split = by_file[path.name]
        try:
            arrays = load_split(path, spec, split, data_seed=task_cfg["data_seed"])
        except BPUInputError as err:
            lines.append(Check(False, f"{path.name} matches its split definition ({err})", key="split.file"))
            continue
        fingerprints[split.name] = split_fingerprints(arrays)
        lines.append(check(len(arrays["inputs"]) == split.count,
                           f"{path.name} holds {len(arrays['inputs'])} sequences of T={split.T}, noise {split.noise_std}",
                           key="split.file"))
    overlaps = leakage_overlaps(fingerprints, exempt=shared_by_design(plan))
    shared = {pair: n for pair, n in overlaps.items() if n}
    total = sum(len(v) for v in fingerprints.values())
    lines.append(check(len(fingerprints) == len(plan) and not shared,
                       f"no train/val/test leakage: no trajectory appears in two of {len(fingerprints)} split files "
                       f"({total} sequences compared by content hash)" + (f"; shared: {shared}" if shared else ""),
                       key="split.leakage"))
    return lines


def model_surface_lines(graph_dir: str | Path, pools_path: str | Path, k_path: str | Path, *, task_cfg: dict,
                        train_mode: str, dense_max_neurons: int, model_name: str,
                        plasticity: dict | None = None) -> list[Line]:
    """A freshly built model exposes exactly the trainable surface of its mode (docs/method.md#bpu)."""
    import torch

    from ..models import build_model, expected_bpu_trainable_count, trainable_parameter_count
    from ..tasks import task_spec

    spec = task_spec(task_cfg)
    sensory, _, output = pool_indices(read_pools(pools_path))
    K = int(read_json(k_path)["K"])
    try:
        primary = load_primary(graph_dir)
        model = build_model(model_name, W=primary.matrix, sensory_idx=sensory, output_idx=output, K=K,
                            input_dim=spec.input_dim, output_dim=spec.output_dim, seed=0, train_mode=train_mode,
                            runtime="auto", device=torch.device("cpu"), dense_max_neurons=dense_max_neurons,
                            plasticity=plasticity)
    except BPUInputError as err:
        return [Check(False, f"{model_name} can be built in `{train_mode}` mode ({err})", key="surface.buildable")]
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    recurrent = {"frozen": [], "observed": ["W_rec_values"], "dense": ["W_rec"]}[train_mode]
    plastic = model.plastic is not None
    expected_names = recurrent + ["W_in", "b_in", "W_out", "b_out"] + (["plastic.W_mod", "plastic.b_mod"] if plastic
                                                                      else [])
    expected = expected_bpu_trainable_count(len(sensory), len(output), spec.input_dim, spec.output_dim,
                                            train_mode=train_mode, nnz=int(primary.matrix.nnz), n=primary.matrix.shape[0],
                                            plastic=plastic)
    surface = ", ".join(expected_names)
    return [
        check(names == expected_names,
              f"{model_name} ({train_mode}) exposes only {surface} as trainable (found: {', '.join(names)})",
              key="surface.trainable_names"),
        check(trainable_parameter_count(model) == expected,
              f"trainable parameter count is correct ({trainable_parameter_count(model):,} = closed form {expected:,})",
              key="surface.trainable_count"),
        check(tuple(model.W_in.shape) == (len(sensory), spec.input_dim) and
              tuple(model.W_out.shape) == (spec.output_dim, len(output)),
              f"sensory-only input masking and output-only readout masking hold by parameter shape "
              f"(W_in {tuple(model.W_in.shape)}, W_out {tuple(model.W_out.shape)})", key="surface.io_masking"),
    ]


def training_comparability_lines(by_seed: pd.DataFrame, metadata: dict,
                                 control_paths: dict[tuple[str, int], Path]) -> list[Line]:
    """Controls and the connectome model were trained comparably, seed by seed (from metrics rows)."""
    bpu = by_seed[by_seed["recurrent_train_mode"] != "none"]
    if bpu.empty:
        return [Note("no BPU metrics rows found", label="SKIP")]
    nnz = metadata["unsigned_edge_count"]
    lines = [check(bpu["K"].nunique() == 1 and int(bpu["K"].iloc[0]) == metadata["estimated_K"],
                   f"all BPU models and controls use K = {metadata['estimated_K']} (found {sorted(int(k) for k in bpu['K'].unique())})",
                   key="comparability.k")]
    if (bpu["recurrent_train_mode"] == "frozen").all():
        lines.append(check((bpu["frozen_edge_count"] == nnz).all(),
                           f"all frozen BPU controls match the frozen edge count of the primary ({nnz})",
                           key="comparability.frozen_edges"))
    else:
        lines.append(check((bpu["recurrent_parameter_count"] == bpu["recurrent_parameter_count"].iloc[0]).all(),
                           "all trainable-recurrent BPU controls have the same recurrent support size",
                           key="comparability.support_size"))
        lines.append(check((bpu["trainable_recurrent_parameter_count"] > 0).all(),
                           "recurrent weights are counted as trainable in metrics",
                           key="comparability.recurrent_trainable"))
    splits_per_job = by_seed.groupby(["model", "seed"])[["split", "T", "noise_std"]].apply(
        lambda g: tuple(sorted(map(tuple, g.to_numpy().tolist()))))
    lines.append(check(splits_per_job.nunique() == 1 and by_seed["n_train"].nunique() == 1,
                       f"every model and seed was evaluated on the same {len(splits_per_job.iloc[0])} splits after "
                       f"training on {by_seed['n_train'].iloc[0]} sequences", key="comparability.same_splits"))
    trained = {(m, int(s)) for m, s in bpu[["model", "seed"]].drop_duplicates().itertuples(index=False)
               if is_stored_control(m)}
    missing = sorted(trained - set(control_paths))
    lines.append(check(not missing, f"every trained control seed ({len(trained)}) has a validated control file above"
                                    + (f"; missing: {missing}" if missing else ""), key="comparability.control_files"))
    return lines
