"""One function per rule family: unpack Snakemake's input/output/params and call the package.

Workflow scripts pass Snakemake's ``snakemake`` object here; tests can pass any object with the same
attributes. Dispatch is on the rule name so that a family shares one script (architecture.md).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import atomic
from .atomic import read_json
from .config import control_base
from .controls import build_control, save_control, write_no_recurrence_marker
from .depth import estimate_k
from .exports import load_exports
from .graph import assemble_metadata, build_matrices, load_primary
from .pools import assign_region_pools, assign_whole_brain_pools, pool_indices, validate_pools
from .reports.checks import render_report
from .reports.validation import (bpu_validation_lines, control_paths_by_key, control_validation_lines,
                                 data_validation_lines, model_surface_lines, preamble, split_lines,
                                 training_comparability_lines)
from .sources import promote_cached_exports
from .sources.download import ExpectedFile, fetch
from .sources.flywire import file_url, write_flywire_exports
from .sources.local import import_local_exports
from .sources.neuprint_source import fetch_neuprint_exports, resolve_token
from .sources.synthetic_cx import write_synthetic_cx

LOG = logging.getLogger(__name__)


def acquire_step(smk: Any) -> dict:
    if smk.rule == "flywire_file":
        return _flywire_file(smk)
    out_dir = Path(smk.output.provenance).parent
    if smk.rule == "synthetic_cx":
        summary = write_synthetic_cx(out_dir, copies=smk.params.copies, seed=smk.params.seed,
                                     background_density=smk.params.background_density)
    elif smk.rule == "local_exports":
        summary = import_local_exports(smk.params.source_dir, out_dir, primary_rois=smk.params.primary_rois)
    elif smk.rule == "neuprint_download":
        summary = fetch_neuprint_exports(out_dir, connectome=smk.params.connectome, server=smk.params.server,
                                         dataset=smk.params.dataset, rois=list(smk.params.rois),
                                         token=resolve_token())
    elif smk.params.source == "neuprint":
        summary = promote_cached_exports(Path(smk.input[0]).parent, out_dir)
    else:
        paths = {Path(p).name: Path(p) for p in smk.input}
        summary = write_flywire_exports(out_dir, smk.params.connectome, paths, release=smk.params.release,
                                        base_url=smk.config["flywire"]["base_url"],
                                        nt_confidence=smk.params.nt_confidence,
                                        overrides=smk.config["flywire"]["files"])
    LOG.info("exports written to %s: %s", out_dir, summary)
    return summary


def _flywire_file(smk: Any) -> dict:
    """One release file into the shared cache; the URL is read from config (a mirror is not a new file)."""
    dest = Path(smk.output[0])
    expected = ExpectedFile(dest.name, smk.params.expected["bytes"], smk.params.expected["md5"])
    download = smk.config["flywire"]["download"]
    fetch(file_url(smk.config["flywire"]["base_url"], dest.name), dest, expected, retries=download["retries"],
          backoff_seconds=download["backoff_seconds"], timeout=download["timeout_seconds"])
    LOG.info("%s verified (%d bytes, md5 %s)", dest, expected.size, expected.md5)
    return {"file": str(dest)}


def graph_step(smk: Any) -> None:
    {"pools": _pools, "matrices": _matrices, "k_estimate": _k_estimate,
     "graph_metadata": _graph_metadata}[smk.rule](smk)


def _pools(smk: Any) -> None:
    exports = load_exports(Path(smk.input[0]).parent)
    if smk.params.pool_rule == "whole_brain":
        pools = assign_whole_brain_pools(exports.neurons, fraction=smk.params.whole_brain_pool_fraction)
    else:
        pools = assign_region_pools(exports.neurons, exports.roi_counts, smk.params.primary_rois,
                                    **smk.params.pools)
    validate_pools(pools, exports.neurons["bodyId"].to_numpy(np.int64), primary_rois=smk.params.primary_rois)
    LOG.info("pool counts: %s", pools["pool"].value_counts().to_dict())
    atomic.write_csv(smk.output[0], pools)


def _matrices(smk: Any) -> None:
    info = build_matrices(Path(smk.input[0]).parent, Path(smk.output.info).parent,
                          connectome=smk.params.connectome, rho_target=smk.params.rho_target,
                          signed_policy=smk.params.signed_policy,
                          sign_coverage_threshold=smk.params.sign_coverage_threshold,
                          spectral_kwargs=dict(smk.params.spectral))
    LOG.info("N=%d edges=%d primary=%s raw radius=%.6g (%s) scale=%.6g", info["N"], info["unsigned_edge_count"],
             info["primary_matrix"], info["raw_primary_spectral_radius"], info["spectral_estimate"]["method"],
             info["spectral_scale"])


def _k_estimate(smk: Any) -> None:
    support = sp.load_npz(smk.input.unsigned).tocsr()
    pools = pd.read_csv(smk.input.pools, dtype={"bodyId": np.int64})
    sensory, _, output = pool_indices(pools)
    k = smk.params.k
    estimate = estimate_k(support, sensory, output, k_min=k["min"], k_max=k["max"], cutoff=k["bfs_cutoff"],
                          exact_max_neurons=k["exact_max_neurons"], sample_sources=k["sample_sources"],
                          sample_seed=k["sample_seed"])
    LOG.info("K=%d (raw median %s, %s)", estimate.K, estimate.raw_median, estimate.method)
    atomic.write_json(smk.output[0], estimate.as_dict())


def _graph_metadata(smk: Any) -> None:
    pools = pd.read_csv(smk.input.pools, dtype={"bodyId": np.int64})
    metadata = assemble_metadata(read_json(smk.input.info), pools, read_json(smk.input.k),
                                 primary_rois=smk.params.primary_rois,
                                 whole_brain_pool_fraction=smk.params.whole_brain_pool_fraction,
                                 synthetic=smk.params.synthetic)
    atomic.write_json(smk.output[0], metadata)


def control_step(smk: Any) -> None:
    primary = load_primary(Path(smk.input.info).parent)
    name, seed = smk.wildcards.control, int(smk.wildcards.seed)
    sha = primary.info["primary_sha256"]
    if name == "no_recurrence":
        write_no_recurrence_marker(smk.output[0], primary.matrix, seed=seed, primary_sha256=sha,
                                   rho_target=smk.params.rho_target, neuron_signs=primary.signs_for_controls)
        return
    control = build_control(primary.matrix, name, seed, rho_target=smk.params.rho_target,
                            neuron_signs=primary.signs_for_controls, spectral_kwargs=dict(smk.params.spectral))
    LOG.info("%s seed %d: rng seed %d, radius before rescale %.6g (%s), scale %.6g", name, seed, control.rng_seed,
             control.spectral_before.radius, control.spectral_before.method, control.scale)
    save_control(smk.output[0], control, primary_sha256=sha,
                 extra_meta={"substrate": smk.wildcards.substrate, "control_family": control_base(name)})


def report_step(smk: Any) -> None:
    metadata = read_json(smk.input.metadata)
    graph_dir = Path(smk.input.metadata).parent
    if smk.rule == "data_validation":
        exports_dir = Path(smk.input.exports[0]).parent
        title = "Data Validation"
        lines = data_validation_lines(exports_dir, smk.input.pools, smk.input.metadata, smk.input.arrays)
        lines += split_lines(smk.input.splits, dict(smk.params.task))
    elif smk.rule == "bpu_validation":
        title = "BPU Validation"
        lines = bpu_validation_lines(graph_dir, smk.input.connections, smk.input.metadata, k_min=smk.params.k_min,
                                     k_max=smk.params.k_max, spectral_kwargs=dict(smk.params.spectral))
        lines += model_surface_lines(graph_dir, smk.input.pools, smk.input.k, task_cfg=dict(smk.params.task),
                                     train_mode=smk.params.mode, dense_max_neurons=smk.params.dense_max_neurons,
                                     model_name=smk.params.primary)
    else:
        title = "Control Validation"
        paths = control_paths_by_key(smk.input.controls)
        lines = control_validation_lines(graph_dir, paths, rho_target=smk.params.rho_target,
                                         spectral_kwargs=dict(smk.params.spectral))
        lines += training_comparability_lines(pd.read_csv(smk.input.by_seed), metadata, paths)
    atomic.write_text(smk.output[0], render_report(title, lines, preamble(metadata)))
