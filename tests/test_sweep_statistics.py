"""Sweep statistics against values worked out by hand in this file.

Exact tests are counted out over sign assignments (2^n of them); t quantiles are typed in from a table
(t_{0.975,2} = 4.303), and every mean, sd and effect size is computed here from its formula.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from connectome_bpu.errors import BPUInputError
from connectome_bpu.metrics import HIGHER_IS_BETTER, METRIC_COLUMNS, metric_direction
from connectome_bpu.sweep_statistics import (
    MATCHED_TOPOLOGY,
    REFERENCE_BASELINE,
    comparison_type,
    delta_statistics,
    holm,
    leaderboard,
    matched_topology_comparisons,
    paired_comparisons,
    seeds_needed,
    sweep_report_markdown,
    sweep_statistics,
    wilcoxon_p_value,
)

KEY = {"split": "test", "T": 20, "n_train": 64}
RMSE_TASK, RMSE = "optic_flow", "overall_rmse"
ACCURACY_TASK, ACCURACY = "mb_associative", "reversal_probe_accuracy"
T_975_DF2 = 4.303


def _by_seed(task: str, values: dict[str, list[float | None]], metric: str) -> pd.DataFrame:
    """model -> one value of ``metric`` per seed (None: no row for that seed); every other metric is 1.0."""
    rows = []
    for model, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            if value is None:
                continue
            row = {"seed": seed, "model": model, "task": task, **KEY, "noise_std": 0.0}
            row.update({m: 1.0 for m in METRIC_COLUMNS[task]})
            row[metric] = value
            rows.append(row)
    return pd.DataFrame(rows)


def _paired(by_seed: pd.DataFrame, models: list[str], metrics: list[str], primary: str = "cx_bpu") -> pd.DataFrame:
    return paired_comparisons(by_seed, primary=primary, models=models, **KEY, metrics=metrics, level=0.95)


def _board(by_seed: pd.DataFrame, task: str, metric: str, models: list[str]) -> pd.DataFrame:
    return leaderboard(by_seed, task=task, primary="cx_bpu", **KEY, models=models, primary_metric=metric, level=0.95)


def _row(table: pd.DataFrame, baseline: str, metric: str) -> pd.Series:
    return table[(table["baseline_model"] == baseline) & (table["metric"] == metric)].iloc[0]


# --- declared directions ----------------------------------------------------------------------------------------

def test_every_metric_column_has_a_declared_direction_consistent_with_higher_is_better():
    names = {c for columns in METRIC_COLUMNS.values() for c in columns}
    names |= {"loss", "best_val_loss", "final_train_loss", "drift_slope_vs_T", "wallclock_latency_ms_per_sequence"}
    for name in names:
        assert metric_direction(name) == ("higher" if name in HIGHER_IS_BETTER else "lower")
    assert {metric_direction(m) for m in ("overall_rmse", "yaw_rmse", "loss", "drift_slope_vs_T")} == {"lower"}
    assert {metric_direction(m) for m in ("yaw_r2", "reversal_probe_accuracy", "final_home_vector_cosine")} == {
        "higher"}


def test_an_undeclared_metric_name_is_an_error_not_a_guess():
    with pytest.raises(BPUInputError, match="mean_abs_error"):
        metric_direction("mean_abs_error")
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": [0.3], "random": [0.4]}, RMSE).assign(mean_abs_error=1.0)
    with pytest.raises(BPUInputError, match="mean_abs_error"):
        _paired(by_seed, ["cx_bpu", "random"], ["mean_abs_error"])


# --- exact tests, interval, effect size, Holm -------------------------------------------------------------------

def test_five_seeds_all_in_favour_give_exact_p_of_one_sixteenth():
    """All 5 deltas positive: only the all-plus and all-minus of 2^5 sign assignments are as extreme: 2/32."""
    primary = [0.30, 0.31, 0.32, 0.33, 0.34]
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": primary, "random": [p + d for p, d in
                                                               zip(primary, [0.1, 0.2, 0.3, 0.4, 0.5])]}, RMSE)
    row = _row(_paired(by_seed, ["cx_bpu", "random"], [RMSE]), "random", RMSE)
    assert row["paired_seed_count"] == 5
    assert row["sign_flip_p"] == pytest.approx(0.0625)
    assert row["wilcoxon_p"] == pytest.approx(0.0625)


def test_wilcoxon_drops_zero_deltas_and_is_exact_under_ties():
    # one zero: the test runs on the 4 nonzero deltas, all positive -> 2/16
    assert wilcoxon_p_value(np.array([0.0, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(0.125)
    assert math.isnan(wilcoxon_p_value(np.zeros(3)))
    assert math.isnan(wilcoxon_p_value(np.array([])))
    # tied |0.1|: signed mid-ranks 1.5, 1.5, 4, -3, 5 (sum 9 of 15). |sum| >= 9 iff the negative ranks sum to
    # <= 3 or >= 12: {}, {1.5}, {1.5'}, {1.5, 1.5'}, {3} and their 5 complements -> 10 / 32.
    assert wilcoxon_p_value(np.array([0.1, 0.1, 0.3, -0.2, 0.5])) == pytest.approx(10 / 32)


def test_t_interval_test_and_effect_sizes_on_three_deltas():
    """Deltas 0.1, 0.2, 0.3: mean 0.2, sd 0.1, se 0.1/sqrt(3); t = 2*sqrt(3), df 2."""
    stats = delta_statistics(np.array([0.1, 0.2, 0.3]), 0.95)
    se = 0.1 / math.sqrt(3)
    assert stats["mean_delta"] == pytest.approx(0.2)
    assert stats["std_delta"] == pytest.approx(0.1)
    assert stats["se_delta"] == pytest.approx(se)
    assert stats["ci_high"] - 0.2 == pytest.approx(T_975_DF2 * se, rel=3e-4)
    assert 0.2 - stats["ci_low"] == pytest.approx(T_975_DF2 * se, rel=3e-4)
    # df 2: two-sided p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14)
    assert stats["t_p"] == pytest.approx(1 - math.sqrt(6 / 7))
    assert stats["effect_size_dz"] == pytest.approx(2.0)
    # J(2) = Gamma(1) / (1 * Gamma(1/2)) = 1 / sqrt(pi)
    assert stats["hedges_gz"] == pytest.approx(2.0 / math.sqrt(math.pi))
    assert stats["ci95_high_normal"] == pytest.approx(0.2 + 1.96 * se)
    assert stats["ci95_low_normal"] == pytest.approx(0.2 - 1.96 * se)


def test_hedges_correction_with_five_deltas_and_undefined_effect_sizes():
    """0.1..0.5: mean 0.3, sd sqrt(0.1 / 4); J(4) = Gamma(2) / (sqrt(2) Gamma(3/2)) = sqrt(2 / pi)."""
    stats = delta_statistics(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), 0.95)
    dz = 0.3 / math.sqrt(0.1 / 4)
    assert stats["effect_size_dz"] == pytest.approx(dz)
    assert stats["hedges_gz"] == pytest.approx(dz * math.sqrt(2 / math.pi))
    constant = delta_statistics(np.array([0.2, 0.2, 0.2]), 0.95)
    assert math.isnan(constant["effect_size_dz"]) and math.isnan(constant["t_p"])
    single = delta_statistics(np.array([0.2]), 0.95)
    assert math.isnan(single["ci_low"]) and math.isnan(single["std_delta"]) and math.isnan(single["hedges_gz"])


def test_holm_on_a_hand_example():
    """Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04; made non-decreasing: 0.03, 0.06, 0.06."""
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])                       # capped at 1
    np.testing.assert_allclose(holm([0.02, np.nan, 0.04]), [0.04, np.nan, 0.04])   # NaN kept, not counted
    assert holm([]).shape == (0,)


def test_holm_runs_across_every_baseline_of_one_metric():
    primary = [0.3, 0.3, 0.3, 0.3, 0.3]
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": primary, "random": [0.4, 0.5, 0.6, 0.7, 0.8],
                                   "gru": [0.4, 0.2, 0.5, 0.1, 0.6]}, RMSE)
    paired = _paired(by_seed, ["cx_bpu", "random", "gru"], [RMSE, "yaw_rmse"])
    rmse = paired[paired["metric"] == RMSE]
    for column in ("sign_flip_p", "wilcoxon_p", "t_p"):
        np.testing.assert_allclose(rmse[f"{column}_holm"], holm(rmse[column].to_numpy()))
    # yaw_rmse is 1.0 everywhere: every delta is zero, so its family is separate and untestable by Wilcoxon
    yaw = paired[paired["metric"] == "yaw_rmse"]
    assert yaw["wilcoxon_p_holm"].isna().all()
    assert (yaw["sign_flip_p_holm"] == 1.0).all()


def test_seeds_needed_for_the_exact_floor_to_clear_holm():
    assert seeds_needed(1) == 6            # 2/32 = 0.0625 >= 0.05, 2/64 < 0.05
    assert seeds_needed(4) == 8            # 4 * 2/128 = 0.0625, 4 * 2/256 < 0.05


# --- direction, pairing and ranking -----------------------------------------------------------------------------

def test_rmse_leaderboard_sorts_ascending_and_the_paired_delta_favours_the_lower_error():
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": [0.30, 0.30], "random": [0.45, 0.45], "gru": [0.20, 0.20]}, RMSE)
    board = _board(by_seed, RMSE_TASK, RMSE, ["cx_bpu", "random", "gru"])
    assert list(board["model"]) == ["gru", "cx_bpu", "random"]
    assert board.set_index("model").loc["random", "primary_paired_delta"] == pytest.approx(0.15)
    assert board.set_index("model").loc["gru", "primary_paired_delta"] == pytest.approx(-0.10)
    row = _row(_paired(by_seed, ["cx_bpu", "random", "gru"], [RMSE]), "random", RMSE)
    assert row["mean_delta"] == pytest.approx(0.15)
    assert row["direction"] == "lower"


def test_accuracy_leaderboard_sorts_descending_with_integer_ranks_and_missing_last():
    by_seed = _by_seed(ACCURACY_TASK, {"cx_bpu": [0.7, 0.8], "random": [0.9, 0.9], "gru": [np.nan, np.nan],
                                       "mean_predictor": [0.5, 0.5]}, ACCURACY)
    models = ["cx_bpu", "random", "weight_shuffle", "gru", "mean_predictor"]
    board = _board(by_seed, ACCURACY_TASK, ACCURACY, models)
    assert list(board["model"]) == ["random", "cx_bpu", "mean_predictor", "weight_shuffle", "gru"]
    assert board["rank"].tolist() == [1, 2, 3, 4, 5]
    assert pd.api.types.is_integer_dtype(board["rank"]) and pd.api.types.is_integer_dtype(board["primary_paired_n"])
    indexed = board.set_index("model")
    assert indexed.loc["random", "primary_paired_delta"] == pytest.approx(-0.15)   # 0.75 - 0.9, higher is better
    assert indexed.loc["weight_shuffle", "n_seeds"] == 0                               # listed, not dropped
    assert indexed.loc["cx_bpu", "role"] == "primary" and indexed.loc["gru", "role"] == REFERENCE_BASELINE
    assert math.isnan(indexed.loc["cx_bpu", "primary_paired_delta"]) and indexed.loc["cx_bpu", "primary_paired_n"] == 0


def test_merging_seeds_0_8_and_0_9_gives_mean_0_85():
    by_seed = _by_seed(ACCURACY_TASK, {"cx_bpu": [0.8, 0.9]}, ACCURACY)
    row = _board(by_seed, ACCURACY_TASK, ACCURACY, ["cx_bpu"]).iloc[0]
    assert row[f"{ACCURACY}_mean"] == pytest.approx(0.85)
    assert row[f"{ACCURACY}_n_seeds"] == 2


def test_missing_and_nonfinite_seeds_are_dropped_from_pairing_and_counted():
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": [0.3, np.nan, 0.3, 0.3, 0.3, None],
                                   "random": [0.4, 0.4, 0.5, None, 0.6, 0.5]}, RMSE)
    row = _row(_paired(by_seed, ["cx_bpu", "random"], [RMSE]), "random", RMSE)
    assert row["paired_seed_count"] == 3 and row["seeds_used"] == "[0, 2, 4]"
    assert row["n_excluded"] == 3
    assert row["seeds_missing_other"] == "[3]" and row["seeds_missing_primary"] == "[5]"
    assert row["seeds_nonfinite"] == "[1]"
    assert row["mean_delta"] == pytest.approx(0.2)        # (0.1 + 0.2 + 0.3) / 3


def test_only_clean_rows_of_the_evaluation_split_are_used_and_duplicates_are_refused():
    clean = _by_seed(RMSE_TASK, {"cx_bpu": [0.3, 0.3], "random": [0.4, 0.4]}, RMSE)
    noisy = clean.assign(noise_std=0.1, overall_rmse=9.0)
    other_split = clean.assign(split="val", overall_rmse=9.0)
    row = _row(_paired(pd.concat([clean, noisy, other_split]), ["cx_bpu", "random"], [RMSE]), "random", RMSE)
    assert row["mean_delta"] == pytest.approx(0.1) and row["paired_seed_count"] == 2
    with pytest.raises(BPUInputError, match="more than one row"):
        _paired(pd.concat([clean, clean.assign(noise_std=np.nan)]), ["cx_bpu", "random"], [RMSE])


def test_matched_topology_rows_hold_only_the_primarys_topology_controls():
    models = ["cx_bpu", "random", "weight_shuffle_dale", "no_recurrence", "gru", "gru_matched", "mean_predictor"]
    by_seed = _by_seed(RMSE_TASK, {m: [0.3, 0.4, 0.5] for m in models}, RMSE)
    paired = _paired(by_seed, models, [RMSE])
    matched = matched_topology_comparisons(paired)
    assert set(matched["baseline_model"]) == {"random", "weight_shuffle_dale", "no_recurrence"}
    assert (matched["comparison_type"] == MATCHED_TOPOLOGY).all()
    assert set(paired.loc[paired["comparison_type"] == REFERENCE_BASELINE, "baseline_model"]) == {
        "gru", "gru_matched", "mean_predictor"}
    with pytest.raises(BPUInputError, match="connectome_bpu"):
        comparison_type("connectome_bpu")


# --- report -----------------------------------------------------------------------------------------------------

def test_sweep_statistics_and_report():
    models = ["cx_bpu", "random", "degree_shuffle", "gru", "mean_predictor"]
    values = {"cx_bpu": [0.30, 0.31, 0.32, 0.33, 0.34], "random": [0.40, 0.52, 0.61, 0.74, 0.85],
              "degree_shuffle": [0.31, 0.30, 0.33, 0.32, 0.35], "gru": [0.2] * 5, "mean_predictor": [0.9] * 5}
    result = sweep_statistics(_by_seed(RMSE_TASK, values, RMSE), experiment="flow", task=RMSE_TASK,
                              primary="cx_bpu", models=models, **KEY, level=0.95)
    text = result["markdown"]
    assert text.startswith("# Sweep report: flow")
    assert "Jobs: 25; seeds: 5 (0, 1, 2, 3, 4)." in text
    assert "Primary metric: `overall_rmse` (lower is better)." in text
    assert "## Leaderboard" in text and "## Paired comparisons" in text and "## Interpretation" in text
    assert "| 1 | gru | reference_baseline | 5 | 0.2 |" in text                     # integer rank, 4 sig. digits
    # matched-topology controls come before the reference baselines
    assert text.index("| cx_bpu | degree_shuffle |") < text.index("| cx_bpu | gru |")
    assert "2/2^5 = 0.0625 with 5 paired seeds" in text
    assert "n/a" in text                                                             # the primary's own delta
    assert list(result["matched_topology_comparisons"]["baseline_model"].unique()) == ["random", "degree_shuffle"]
    assert "drift_slope_vs_T" not in set(result["paired_comparisons"]["metric"])    # optic flow has no drift column


def test_report_says_no_rows_for_an_empty_table():
    by_seed = _by_seed(RMSE_TASK, {"cx_bpu": [0.3, 0.3]}, RMSE)
    board = _board(by_seed, RMSE_TASK, RMSE, ["cx_bpu"])
    paired = _paired(by_seed, ["cx_bpu"], [RMSE])
    assert paired.empty and "t_p_holm" in paired
    text = sweep_report_markdown(experiment="solo", leaderboard=board, paired=paired, primary_metric=RMSE,
                                 direction="lower", n_jobs=2, seeds=[0, 1], level=0.95)
    assert "_No rows._" in text
    assert "| 1 | cx_bpu | primary | 2 | 0.3 |" in text
    assert "no matched-topology control" in text
