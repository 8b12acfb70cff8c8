"""Rules of ``rules/graph.smk``: the graph cache of one substrate (pools, matrices, K, metadata)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .. import atomic
from ..atomic import read_json
from ..depth import estimate_k
from ..exports import load_exports
from ..graph import assemble_metadata, build_matrices
from ..pools import assign_region_pools, assign_whole_brain_pools, pool_indices, read_pools, validate_pools

LOG = logging.getLogger(__name__)


def pools(smk: Any) -> None:
    """Sensory / internal / output pool of every neuron, with the reason for each."""
    exports = load_exports(Path(smk.input[0]).parent)
    if smk.params.pool_rule == "whole_brain":
        table = assign_whole_brain_pools(exports.neurons, fraction=smk.params.whole_brain_pool_fraction)
    else:
        table = assign_region_pools(exports.neurons, exports.roi_counts, smk.params.primary_rois, **smk.params.pools)
    validate_pools(table, exports.neurons["bodyId"].to_numpy(np.int64), primary_rois=smk.params.primary_rois)
    LOG.info("pool counts: %s", table["pool"].value_counts().to_dict())
    atomic.write_csv(smk.output[0], table)


def matrices(smk: Any) -> None:
    """Unsigned (and signed) adjacency, scaled to the target spectral radius, with per-neuron arrays."""
    info = build_matrices(Path(smk.input[0]).parent, Path(smk.output.info).parent,
                          connectome=smk.params.connectome, rho_target=smk.params.rho_target,
                          signed_policy=smk.params.signed_policy,
                          sign_coverage_threshold=smk.params.sign_coverage_threshold,
                          spectral_kwargs=dict(smk.params.spectral))
    LOG.info("N=%d edges=%d primary=%s raw radius=%.6g (%s) scale=%.6g", info["N"], info["unsigned_edge_count"],
             info["primary_matrix"], info["raw_primary_spectral_radius"], info["spectral_estimate"]["method"],
             info["spectral_scale"])


def k_estimate(smk: Any) -> None:
    """K, the number of recurrent microsteps: the median sensory-to-output path length, clipped."""
    support = sp.load_npz(smk.input.unsigned).tocsr()
    sensory, _, output = pool_indices(read_pools(smk.input.pools))
    k = smk.params.k
    estimate = estimate_k(support, sensory, output, k_min=k["min"], k_max=k["max"], cutoff=k["bfs_cutoff"],
                          exact_max_neurons=k["exact_max_neurons"], sample_sources=k["sample_sources"],
                          sample_seed=k["sample_seed"])
    LOG.info("K=%d (raw median %s, %s)", estimate.K, estimate.raw_median, estimate.method)
    atomic.write_json(smk.output[0], estimate.as_dict())


def graph_metadata(smk: Any) -> None:
    """One JSON that gathers the graph cache's facts for reports and training."""
    metadata = assemble_metadata(read_json(smk.input.info), read_pools(smk.input.pools), read_json(smk.input.k),
                                 primary_rois=smk.params.primary_rois,
                                 whole_brain_pool_fraction=smk.params.whole_brain_pool_fraction,
                                 synthetic=smk.params.synthetic)
    atomic.write_json(smk.output[0], metadata)
