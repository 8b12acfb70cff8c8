"""Pool rules (docs/method.md#pools) on hand-built tables whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectome_bpu.errors import BPUInputError, GraphError
from connectome_bpu.pools import (
    POOL_COLUMNS,
    assign_region_pools,
    assign_whole_brain_pools,
    pool_indices,
    validate_pools,
    whole_brain_pool_size,
)

CX = ["EB", "PB", "FB", "NO"]
SENSORY_FAMILIES = ("ring", "ExR", "LNO", "LCNO", "GLNO", "SpsP")
OUTPUT_FAMILIES = ("PFL", "PFL2", "PFL3", "PFR")


def neurons_frame(rows):
    """rows: (bodyId, type, instance, pre, post)."""
    frame = pd.DataFrame(rows, columns=["bodyId", "type", "instance", "pre", "post"])
    frame["bodyId"] = frame["bodyId"].astype(np.int64)
    frame[["pre", "post"]] = frame[["pre", "post"]].astype(np.float64)
    frame["transmitter"] = ""
    return frame.sort_values("bodyId", ignore_index=True)


def roi_frame(rows):
    """rows: (bodyId, roi, pre, post)."""
    frame = pd.DataFrame(rows, columns=["bodyId", "roi", "pre", "post"])
    frame["bodyId"] = frame["bodyId"].astype(np.int64)
    frame[["pre", "post"]] = frame[["pre", "post"]].astype(np.float64)
    return frame


# (bodyId, type, instance, pre, post) and the inside-P counts; comments give the fractions (in, out).
NEURONS = neurons_frame([
    (10, "ER4d", "ER4d_L", 100, 100),      # (0.9, 0.1): sensory by threshold
    (20, "PEN", "PEN_a", 100, 100),        # (0.05, 0.8): output by threshold
    (30, "EPGt", "EPGt_R", 100, 100),      # (0.15, 0.0): diff >= 0.1 but input share < 0.2
    (40, "EXR1", "ExR1(R)", 100, 100),     # (0.5, 0.5): near tie, sensory family, case-insensitive
    (50, "PFL3", "PFL3_L", 100, 100),      # (0.5, 0.5): near tie, output family
    (60, "EPG", "EPG_R", 100, 100),        # (0.5, 0.5): near tie, no family
    (70, "", "LNO1(R)", 100, 100),         # (0.5, 0.5): family only in the instance
    (80, "hDelta", "hDelta_A", 100, 100),  # exact ROI match: FB counts, FBl3 and CX do not
    (90, "ring", "ring_L", 100, 100),      # (0.0, 0.5): output by threshold despite sensory family
    (100, "silent", "", 0, 0),             # no synapses at all: (0, 0) near tie
    (110, "PFNa", "", 100, 100),           # (0.0, 0.15): -diff >= 0.1 but output share < 0.2
    (120, "PFL-ring", "", 100, 100),       # near tie matching both lists: sensory list wins
])
ROIS = roi_frame([
    (10, "FB", 90, 10),
    (20, "EB", 20, 95),
    (30, "PB", 100, 85),
    (40, "NO", 50, 50), (50, "FB", 50, 50), (60, "EB", 30, 30), (60, "PB", 20, 20),
    (70, "NO", 50, 50),
    (80, "FB", 50, 50), (80, "FBl3", 0, 50), (80, "CX", 100, 100), (80, "NotPrimary", 0, 0),
    (90, "FB", 50, 100),
    (110, "FB", 85, 100),
    (120, "FB", 50, 50),
    (999, "FB", 1000, 1000),                # id not among the neurons: ignored
])
EXPECTED = {  # bodyId -> (pool, reason)
    10: ("sensory", "threshold"),
    20: ("output", "threshold"),
    30: ("internal", "below_fraction_threshold"),
    40: ("sensory", "type_family_tie_breaker"),
    50: ("output", "type_family_tie_breaker"),
    60: ("internal", "near_tie_internal_default"),
    70: ("sensory", "type_family_tie_breaker"),
    80: ("internal", "near_tie_internal_default"),
    90: ("output", "threshold"),
    100: ("internal", "near_tie_internal_default"),
    110: ("internal", "below_fraction_threshold"),
    120: ("sensory", "type_family_tie_breaker"),
}


def test_region_rules_every_branch():
    pools = assign_region_pools(NEURONS, ROIS, CX)
    assert list(pools.columns) == POOL_COLUMNS
    assert pools["index"].tolist() == list(range(len(NEURONS)))
    got = {int(b): (p, r) for b, p, r in pools[["bodyId", "pool", "assignment_reason"]].itertuples(index=False)}
    assert got == EXPECTED
    flags = pools[["is_sensory", "is_internal", "is_output"]].to_numpy()
    assert flags.dtype == bool and (flags.sum(axis=1) == 1).all()
    validate_pools(pools, NEURONS["bodyId"].to_numpy(), primary_rois=CX)


def test_region_fractions_and_exact_roi_match():
    pools = assign_region_pools(NEURONS, ROIS, CX).set_index("bodyId")
    assert pools.loc[10, ["outside_input_frac", "outside_output_frac"]].tolist() == pytest.approx([0.9, 0.1])
    # 80: only the FB row is inside P; FBl3 (a sub-ROI) and CX (a super-ROI) are not summed.
    assert pools.loc[80, "post_in_cx_primary"] == 50.0 and pools.loc[80, "pre_in_cx_primary"] == 50.0
    assert pools.loc[80, "outside_input_frac"] == pytest.approx(0.5)
    # 60: two primary ROIs are summed.
    assert pools.loc[60, "post_in_cx_primary"] == 50.0
    # 100: no synapses -> max(post, 1) keeps the fraction finite.
    assert pools.loc[100, ["outside_input_frac", "outside_output_frac"]].tolist() == [0.0, 0.0]


def test_fractions_are_clipped_when_roi_counts_exceed_totals():
    neurons = neurons_frame([(1, "a", "", 10, 10)])
    pools = assign_region_pools(neurons, roi_frame([(1, "EB", 30, 40)]), CX)
    assert pools.loc[0, "outside_input_frac"] == 0.0 and pools.loc[0, "outside_output_frac"] == 0.0


def test_config_knobs_change_the_rules():
    # tie_margin 0: no near ties; 40's (0.5, 0.5) then passes "diff >= 0" first -> sensory threshold.
    pools = assign_region_pools(NEURONS, ROIS, CX, tie_margin=0.0).set_index("bodyId")
    assert tuple(pools.loc[40, ["pool", "assignment_reason"]]) == ("sensory", "threshold")
    # a lower outside share admits 30 as sensory
    pools = assign_region_pools(NEURONS, ROIS, CX, min_outside_fraction=0.1).set_index("bodyId")
    assert tuple(pools.loc[30, ["pool", "assignment_reason"]]) == ("sensory", "threshold")
    # no families: every near tie is internal
    pools = assign_region_pools(NEURONS, ROIS, CX, sensory_families=(), output_families=()).set_index("bodyId")
    near = pools.loc[[40, 50, 60, 70, 80, 100, 120]]
    assert set(near["assignment_reason"]) == {"near_tie_internal_default"}


def _reference_rules(neurons, roi_counts, primary, margin, min_frac, sfam, ofam):
    """The region pool rules (docs/method.md#pools) written as a plain per-neuron loop."""
    out = {}
    for row in neurons.itertuples(index=False):
        inside = roi_counts[(roi_counts["bodyId"] == row.bodyId) & roi_counts["roi"].isin(primary)]
        oi = min(max((row.post - inside["post"].sum()) / max(row.post, 1), 0), 1)
        oo = min(max((row.pre - inside["pre"].sum()) / max(row.pre, 1), 0), 1)
        diff = oi - oo
        label = f"{row.type} {row.instance}".lower()
        if abs(diff) < margin:
            if any(f.lower() in label for f in sfam):
                out[row.bodyId] = ("sensory", "type_family_tie_breaker")
            elif any(f.lower() in label for f in ofam):
                out[row.bodyId] = ("output", "type_family_tie_breaker")
            else:
                out[row.bodyId] = ("internal", "near_tie_internal_default")
        elif diff >= margin and oi >= min_frac:
            out[row.bodyId] = ("sensory", "threshold")
        elif -diff >= margin and oo >= min_frac:
            out[row.bodyId] = ("output", "threshold")
        else:
            out[row.bodyId] = ("internal", "below_fraction_threshold")
    return out


def test_vectorised_rules_match_a_plain_loop_on_random_data():
    rng = np.random.default_rng(7)
    n = 300
    ids = np.unique(rng.integers(0, 10**12, size=n, dtype=np.int64))
    names = np.array(["ring", "ExR2", "PFL2", "PFR_a", "EPG", "hDelta", "LCNO", "x.y", "SpsP(L)", ""])
    neurons = neurons_frame([
        (i, str(rng.choice(names)), str(rng.choice(names)), float(rng.integers(0, 50)), float(rng.integers(0, 50)))
        for i in ids])
    roi_rows = [(int(rng.choice(ids)), str(rng.choice(["EB", "FB", "FBl3", "CX", "LAL(R)", "NO"])),
                 float(rng.integers(0, 20)), float(rng.integers(0, 20))) for _ in range(900)]
    rois = roi_frame(roi_rows)
    pools = assign_region_pools(neurons, rois, CX)
    got = {int(b): (p, r) for b, p, r in pools[["bodyId", "pool", "assignment_reason"]].itertuples(index=False)}
    assert got == _reference_rules(neurons, rois, CX, 0.10, 0.20, SENSORY_FAMILIES, OUTPUT_FAMILIES)


def test_empty_roi_counts_leaves_only_family_placements_and_empty_pools_are_named():
    neurons = neurons_frame([(1, "EPG", "", 10, 10), (2, "ring", "", 10, 10), (3, "hDelta", "", 10, 10)])
    pools = assign_region_pools(neurons, pd.DataFrame(), ["EB"])
    assert pools["pool"].tolist() == ["internal", "sensory", "internal"]
    assert (pools["outside_input_frac"] == 1.0).all()
    with pytest.raises(GraphError) as info:
        validate_pools(pools, neurons["bodyId"], primary_rois=["EB"])
    text = str(info.value)
    assert "output pool is empty" in text and "['EB']" in text and "roi_counts.csv" in text


def test_validate_pools_structural_errors():
    pools = assign_region_pools(NEURONS, ROIS, CX)
    ids = NEURONS["bodyId"].to_numpy()
    with pytest.raises(BPUInputError, match="lacks column"):
        validate_pools(pools.drop(columns="is_output"), ids)
    with pytest.raises(BPUInputError, match="duplicated bodyId"):
        validate_pools(pd.concat([pools, pools.iloc[:1]], ignore_index=True), ids)
    with pytest.raises(BPUInputError, match="without a pool"):
        validate_pools(pools.iloc[1:], ids)
    with pytest.raises(BPUInputError, match="unknown id"):
        validate_pools(pools, ids[1:])
    with pytest.raises(BPUInputError, match="sorted by 'index'"):
        validate_pools(pools.iloc[::-1], ids)
    bad = pools.copy()
    bad.loc[0, "pool"] = "motor"
    with pytest.raises(BPUInputError, match="invalid pool label"):
        validate_pools(bad, ids)
    bad = pools.copy()
    bad.loc[0, "is_internal"] = True
    with pytest.raises(BPUInputError, match="disagrees with 'pool'"):
        validate_pools(bad, ids)


def test_pool_indices_are_sorted_int64_and_partition():
    pools = assign_region_pools(NEURONS, ROIS, CX)
    sensory, internal, output = pool_indices(pools)
    assert all(a.dtype == np.int64 for a in (sensory, internal, output))
    position = {int(b): i for i, b in enumerate(NEURONS["bodyId"])}
    assert sensory.tolist() == sorted(position[b] for b, (p, _) in EXPECTED.items() if p == "sensory")
    assert output.tolist() == sorted(position[b] for b, (p, _) in EXPECTED.items() if p == "output")
    assert np.array_equal(np.sort(np.concatenate([sensory, internal, output])), np.arange(len(NEURONS)))


def test_bad_inputs_are_rejected():
    with pytest.raises(BPUInputError, match="sorted ascending"):
        assign_region_pools(NEURONS.iloc[::-1], ROIS, CX)
    for rois in ([], "FB"):
        with pytest.raises(BPUInputError, match="primary_rois"):
            assign_region_pools(NEURONS, ROIS, rois)
    with pytest.raises(BPUInputError, match=r"roi_counts lacks required column\(s\) \['post'\]"):
        assign_region_pools(NEURONS, ROIS.drop(columns="post"), CX)


@pytest.mark.parametrize("n, fraction, size", [
    (3, 0.05, 1), (10, 0.05, 3), (1000, 0.05, 256), (20000, 0.05, 1000),
    (139255, 0.05, 6963),   # the published FlyWire whole-brain pool size
    (6000, 0.45, 2000),     # capped at N // 3
])
def test_whole_brain_pool_size(n, fraction, size):
    assert whole_brain_pool_size(n, fraction) == size


def test_whole_brain_ordering_ties_and_columns():
    # N = 9 -> pool size 3.  (pre, post) per neuron; input score = (post - pre) / max(pre + post, 1).
    rows = [
        (1, 0, 10),    # score 1, activity 10
        (2, 0, 20),    # score 1, activity 20 -> first
        (3, 0, 10),    # score 1, activity 10: same as 1, index breaks the tie -> 1 before 3
        (4, 5, 5),     # score 0
        (5, 10, 0),    # output score 1, activity 10
        (6, 30, 0),    # output score 1, activity 30 -> first output
        (7, 10, 0),    # ties with 5 -> 5 before 7
        (8, 0, 0),     # silent: score 0, activity 0
        (9, 1, 3),     # input score 0.5
    ]
    neurons = neurons_frame([(b, f"t{b}", "", pre, post) for b, pre, post in rows])
    pools = assign_whole_brain_pools(neurons, fraction=0.05)
    assert list(pools.columns) == POOL_COLUMNS
    by_id = pools.set_index("bodyId")
    assert sorted(by_id.index[by_id["pool"] == "sensory"]) == [1, 2, 3]
    assert sorted(by_id.index[by_id["pool"] == "output"]) == [5, 6, 7]
    assert set(by_id.loc[[4, 8, 9], "assignment_reason"]) == {"whole_brain_internal_default"}
    assert set(by_id.loc[[1, 2, 3], "assignment_reason"]) == {"whole_brain_input_dominance"}
    assert set(by_id.loc[[5, 6, 7], "assignment_reason"]) == {"whole_brain_output_dominance"}
    assert by_id.loc[9, "outside_input_frac"] == pytest.approx(0.75)
    assert by_id.loc[9, "outside_output_frac"] == pytest.approx(0.25)
    assert by_id.loc[8, ["outside_input_frac", "outside_output_frac"]].tolist() == [0.0, 0.0]
    assert (pools[["post_in_cx_primary", "pre_in_cx_primary"]] == 0.0).all().all()
    validate_pools(pools, neurons["bodyId"], primary_rois=["whole_brain"])


def test_whole_brain_tie_break_is_by_index_when_score_and_activity_tie():
    # 12 identical neurons -> size 4; sensory = first 4 indices, output = next 4 (deterministic).
    neurons = neurons_frame([(100 + i, "", "", 5, 5) for i in range(12)])
    sensory, internal, output = pool_indices(assign_whole_brain_pools(neurons))
    assert sensory.tolist() == [0, 1, 2, 3] and output.tolist() == [4, 5, 6, 7]
    assert internal.tolist() == [8, 9, 10, 11]


def test_whole_brain_input_errors():
    with pytest.raises(GraphError, match="at least 3 neurons"):
        assign_whole_brain_pools(neurons_frame([(1, "", "", 1, 1), (2, "", "", 1, 1)]))
    three = neurons_frame([(b, "", "", 1, 1) for b in (1, 2, 3)])
    for fraction in (0.0, 0.5, -0.1):
        with pytest.raises(BPUInputError, match="whole_brain_pool_fraction"):
            assign_whole_brain_pools(three, fraction=fraction)
