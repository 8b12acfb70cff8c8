"""Size matching: a substrate's exports cut or expanded to another's neuron and edge count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from connectome_bpu.errors import BPUInputError
from connectome_bpu.exports import load_exports
from connectome_bpu.pools import assign_region_pools
from connectome_bpu.size_match import size_match_exports
from connectome_bpu.sources import write_export_set
from connectome_bpu.sources.synthetic_cx import PRIMARY_ROIS as CX_ROIS
from connectome_bpu.sources.synthetic_cx import write_synthetic_cx
from connectome_bpu.sources.synthetic_mb import PRIMARY_ROIS as MB_ROIS
from connectome_bpu.sources.synthetic_mb import write_synthetic_mb

CONFIG = yaml.safe_load(open("config.yaml"))
POOL_SETTINGS = {k: CONFIG["graph"]["pools"][k] for k in ("tie_margin", "min_outside_fraction", "sensory_families",
                                                          "output_families")}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("size_match")
    write_synthetic_cx(root / "cx", copies=1, seed=0, background_density=0.002, transmitter_coverage=0.6)
    write_synthetic_mb(root / "mb", projection_neurons=24, kenyon_cells=200, claws=5, compartments=4, seed=0,
                       background_density=0.002, transmitter_coverage=0.6)
    return {"cx": load_exports(root / "cx"), "mb": load_exports(root / "mb")}


def _pools(neurons: pd.DataFrame, rois: pd.DataFrame, primary) -> pd.Series:
    return assign_region_pools(neurons, rois, primary, **POOL_SETTINGS).set_index("bodyId")["pool"]


@pytest.mark.parametrize("source, target_n, target_e", [("cx", 300, 3000), ("mb", 90, 400), ("cx", 128, 700)])
def test_exact_size_and_valid_exports(tmp_path, sources, source, target_n, target_e):
    exports = sources[source]
    neurons, rois, edges, record = size_match_exports(exports, target_neurons=target_n, target_edges=target_e, seed=0)
    assert len(neurons) == target_n and len(edges) == target_e
    assert neurons["bodyId"].is_unique and neurons["bodyId"].dtype == np.int64
    assert not (edges["bodyId_pre"] == edges["bodyId_post"]).any()
    assert not edges.duplicated(["bodyId_pre", "bodyId_post"]).any()
    assert set(edges["bodyId_pre"]) | set(edges["bodyId_post"]) <= set(neurons["bodyId"])
    assert record.copies == -(-target_n // len(exports.neurons))
    assert record.induced_edges - record.edges_dropped + record.edges_added == target_e
    write_export_set(tmp_path, neurons=neurons, roi_counts=rois, connections=edges, provenance={})
    reread = load_exports(tmp_path)   # the ordinary, strict export validation accepts it
    # cell types keep their proportions, so the pool rule still finds sensory and output neurons
    shares = exports.neurons["type"].value_counts(normalize=True)
    kept = reread.neurons["type"].value_counts(normalize=True).reindex(shares.index, fill_value=0)
    assert np.abs(kept - shares).max() < 2.0 / target_n + 1e-9
    pools = _pools(reread.neurons, reread.roi_counts, CX_ROIS if source == "cx" else MB_ROIS)
    assert (pools == "sensory").any() and (pools == "output").any()


def test_cut_keeps_the_strongest_of_each_type_and_drops_the_weakest_edges(sources):
    exports = sources["mb"]
    neurons, _, edges, record = size_match_exports(exports, target_neurons=100, target_edges=300, seed=0)
    assert record.copies == 1 and record.edges_added == 0 and record.edges_dropped > 0
    src = exports.connections
    strength = src.groupby("bodyId_pre")["weight"].sum().add(src.groupby("bodyId_post")["weight"].sum(), fill_value=0)
    for cell_type, group in exports.neurons.groupby("type"):
        kept = neurons.loc[neurons["type"] == cell_type, "bodyId"]
        if 0 < len(kept) < len(group):
            dropped = group.loc[~group["bodyId"].isin(kept), "bodyId"]
            assert strength.reindex(kept).fillna(0).min() >= strength.reindex(dropped).fillna(0).max()
    ids = neurons["bodyId"]
    induced = src[src["bodyId_pre"].isin(ids) & src["bodyId_post"].isin(ids)]
    kept = induced.set_index(["bodyId_pre", "bodyId_post"]).index.isin(edges.set_index(["bodyId_pre", "bodyId_post"]).index)
    assert kept.sum() == len(edges) and (~kept).sum() == record.edges_dropped
    assert induced.loc[kept, "weight"].min() >= induced.loc[~kept, "weight"].max()


def test_expansion_tiles_copies_and_adds_random_edges_deterministically(sources):
    exports = sources["cx"]
    n = len(exports.neurons)
    first = size_match_exports(exports, target_neurons=2 * n + 5, target_edges=6 * len(exports.connections), seed=3)
    again = size_match_exports(exports, target_neurons=2 * n + 5, target_edges=6 * len(exports.connections), seed=3)
    other = size_match_exports(exports, target_neurons=2 * n + 5, target_edges=6 * len(exports.connections), seed=4)
    assert first[3].copies == 3 and first[3].edges_added > 0 and first[3].edges_dropped == 0
    for a, b in zip(first[:3], again[:3]):
        pd.testing.assert_frame_equal(a, b)
    assert not first[2].equals(other[2])
    added = set(map(tuple, first[2][["bodyId_pre", "bodyId_post"]].to_numpy()))
    # added weights come from the source's own weights
    assert set(first[2]["weight"]) <= set(exports.connections["weight"])
    assert len(added) == 6 * len(exports.connections)


def test_impossible_targets_are_refused(sources):
    with pytest.raises(BPUInputError, match="do not fit among 3 neurons"):
        size_match_exports(sources["cx"], target_neurons=3, target_edges=7, seed=0)
    with pytest.raises(BPUInputError, match=">= 2 neurons"):
        size_match_exports(sources["cx"], target_neurons=1, target_edges=1, seed=0)
