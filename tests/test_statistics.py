"""``metrics_summary`` and ``paired_differences`` against numbers worked out by hand in this file.

The per-seed tables are written out literally; every expected mean, standard deviation (ddof=1) and
Student-t interval is computed here from the formula, with the t quantiles typed in from a table
(t_{0.975,1} = 12.706, t_{0.975,2} = 4.303, t_{0.975,4} = 2.776), never from scipy. Because those
constants are rounded to four significant digits, half-widths are compared to 3e-4 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from connectome_bpu.metrics import DRIFT_COLUMN, METRIC_COLUMNS
from connectome_bpu.results import paired_differences, parse_seed_list, summarise

T_975 = {1: 12.706, 2: 4.303, 4: 2.776}   # two-sided 95 %: t quantile 0.975 by degrees of freedom
ROUNDING = 3e-4
TASK = "cartesian"
KEY = {"split": "test", "T": 50, "noise_std": 0.0, "n_train": 100}


def _by_seed(values: dict[str, dict[str, list[float | None]]]) -> pd.DataFrame:
    """Rows of model -> {metric: one value per seed (None: no row for that seed)}; other metrics are 1.0."""
    rows = []
    for model, metrics in values.items():
        n = len(next(iter(metrics.values())))
        for seed in range(n):
            if any(metrics[m][seed] is None for m in metrics):
                continue
            row = {"seed": seed, "model": model, "task": TASK, **KEY, "trainable_parameter_count": 10,
                   "recurrent_train_mode": "frozen"}
            for metric in METRIC_COLUMNS[TASK] + [DRIFT_COLUMN, "final_train_loss"]:
                row[metric] = 1.0
            row.update({m: v[seed] for m, v in metrics.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _half_width(values: list[float]) -> float:
    """Half-width of the 95 % Student-t interval of the mean: t_{0.975, n-1} * sd / sqrt(n)."""
    return T_975[len(values) - 1] * _mean_sd(values)[1] / math.sqrt(len(values))


def _assert_interval(mean: float, low: float, high: float, values: list[float]) -> None:
    expected_mean = sum(values) / len(values)
    assert mean == pytest.approx(expected_mean, rel=1e-12, abs=1e-12)
    assert (high - mean) == pytest.approx(_half_width(values), rel=ROUNDING)
    assert (mean - low) == pytest.approx(_half_width(values), rel=ROUNDING)


def _pair(paired: pd.DataFrame, control: str, metric: str) -> pd.Series:
    rows = paired[(paired["control"] == control) & (paired["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


# --- summarise -----------------------------------------------------------------------------------------

def test_summary_of_three_seeds_by_hand():
    errors = [1.0, 2.0, 4.0]
    table = summarise(_by_seed({"cx_bpu": {"position_rmse": errors}}), TASK, 0.95)
    row = table.iloc[0]
    # mean 7/3; squared deviations 16/9 + 1/9 + 25/9 = 42/9, / 2 -> variance 7/3, sd 1.5275
    assert row["position_rmse_mean"] == pytest.approx(7 / 3)
    assert row["position_rmse_std"] == pytest.approx(math.sqrt(7 / 3))
    assert row["position_rmse_ci_high"] - 7 / 3 == pytest.approx(4.303 * math.sqrt(7 / 3) / math.sqrt(3), rel=ROUNDING)
    assert row["position_rmse_ci_high"] == pytest.approx(6.1281, abs=1e-3)
    assert row["position_rmse_ci_low"] == pytest.approx(-1.4615, abs=1e-3)
    assert row["n_seeds"] == 3 and row["position_rmse_n_seeds"] == 3 and row["position_rmse_n_excluded"] == 0


def test_summary_of_five_seeds_by_hand():
    errors = [0.2, 0.4, 0.3, 0.8, 0.3]
    row = summarise(_by_seed({"cx_bpu": {"position_rmse": errors}}), TASK, 0.95).iloc[0]
    mean, sd = _mean_sd(errors)
    assert mean == pytest.approx(0.4) and sd == pytest.approx(math.sqrt(0.22 / 4))
    assert row["position_rmse_std"] == pytest.approx(sd)
    _assert_interval(row["position_rmse_mean"], row["position_rmse_ci_low"], row["position_rmse_ci_high"], errors)
    assert row["position_rmse_ci_high"] - mean == pytest.approx(2.776 * sd / math.sqrt(5), rel=ROUNDING)
    assert row["n_seeds"] == 5


def test_summary_counts_seeds_excluded_as_non_finite():
    errors = [1.0, np.nan, 3.0]
    row = summarise(_by_seed({"cx_bpu": {"position_rmse": errors}}), TASK, 0.95).iloc[0]
    # The NaN seed is left out of mean, sd and interval, and the row says so.
    assert row["n_seeds"] == 3
    assert row["position_rmse_n_seeds"] == 2 and row["position_rmse_n_excluded"] == 1
    assert row["position_rmse_mean"] == pytest.approx(2.0)
    assert row["position_rmse_std"] == pytest.approx(math.sqrt(2.0))      # (1 + 1) / 1
    assert row["position_rmse_ci_high"] - 2.0 == pytest.approx(12.706 * math.sqrt(2.0) / math.sqrt(2), rel=ROUNDING)
    # Metrics without a NaN still use every seed.
    assert row["loss_n_seeds"] == 3 and row["loss_n_excluded"] == 0


def test_summary_of_one_finite_seed_has_no_interval_and_an_all_nan_metric_no_mean():
    row = summarise(_by_seed({"cx_bpu": {"position_rmse": [np.nan, 2.0, np.inf],
                                         "final_train_loss": [np.nan, np.nan, np.nan]}}), TASK, 0.95).iloc[0]
    assert row["position_rmse_mean"] == 2.0 and row["position_rmse_n_seeds"] == 1
    assert row["position_rmse_n_excluded"] == 2
    assert np.isnan(row["position_rmse_std"]) and np.isnan(row["position_rmse_ci_low"])
    assert np.isnan(row["final_train_loss_mean"]) and row["final_train_loss_n_excluded"] == 3


def test_summary_counts_the_seeds_each_model_ran():
    table = summarise(_by_seed({"cx_bpu": {"position_rmse": [1.0, 2.0, 3.0]},
                                "random": {"position_rmse": [2.0, 4.0, None]}}), TASK, 0.95).set_index("model")
    assert table.loc["cx_bpu", "n_seeds"] == 3 and table.loc["random", "n_seeds"] == 2
    assert table.loc["random", "position_rmse_mean"] == 3.0 and table.loc["random", "position_rmse_n_seeds"] == 2


# --- paired differences ---------------------------------------------------------------------------------

# Each model's error and cosine per seed. Seeds differ a lot; the differences to cx_bpu do not.
RUN = {
    "cx_bpu": {"position_rmse": [1.0, 2.0, 4.0], "final_home_vector_cosine": [0.90, 0.80, 0.70]},
    "random": {"position_rmse": [2.0, 3.2, 5.1], "final_home_vector_cosine": [0.50, 0.45, 0.30]},
    "gru": {"position_rmse": [0.5, 1.4, 3.6], "final_home_vector_cosine": [0.95, 0.90, 0.80]},
    "no_recurrence": {"position_rmse": [1.5, 1.7, 4.1], "final_home_vector_cosine": [0.90, 0.80, 0.70]},
}


def test_paired_difference_is_per_seed_then_its_interval():
    paired = paired_differences(_by_seed(RUN), "cx_bpu", ["random", "gru", "no_recurrence"], TASK, 0.95)
    for control in ("random", "gru", "no_recurrence"):
        for metric in ("position_rmse", "final_home_vector_cosine"):
            diffs = [a - b for a, b in zip(RUN["cx_bpu"][metric], RUN[control][metric])]
            row = _pair(paired, control, metric)
            assert row["n_seeds"] == 3 and row["n_excluded"] == 0
            assert parse_seed_list(row["seeds_used"]) == [0, 1, 2]
            if _mean_sd(diffs)[1] > 0:
                _assert_interval(row["mean_difference"], row["ci_low"], row["ci_high"], diffs)
    # random: differences -1.0, -1.2, -1.1 -> mean -1.1, sd 0.1, half-width 4.303 * 0.1 / sqrt(3) = 0.2484
    rmse = _pair(paired, "random", "position_rmse")
    assert rmse["mean_difference"] == pytest.approx(-1.1)
    assert (rmse["ci_low"], rmse["ci_high"]) == pytest.approx((-1.3484, -0.8516), abs=2e-4)
    # An unpaired interval of the two means would span zero: the seeds vary far more than the difference.
    cx_half, random_half = _half_width(RUN["cx_bpu"]["position_rmse"]), _half_width(RUN["random"]["position_rmse"])
    assert cx_half > 1.1 and random_half > 1.1


def test_every_verdict_including_the_higher_is_better_cosine():
    paired = paired_differences(_by_seed(RUN), "cx_bpu", ["random", "gru", "no_recurrence"], TASK, 0.95)
    # Lower error is better: a negative difference (interval below zero) favours the connectome.
    assert _pair(paired, "random", "position_rmse")["ci_high"] < 0
    assert _pair(paired, "random", "position_rmse")["verdict"] == "connectome better"
    assert _pair(paired, "gru", "position_rmse")["ci_low"] > 0                # diffs 0.5, 0.6, 0.4
    assert _pair(paired, "gru", "position_rmse")["verdict"] == "control better"
    nr = _pair(paired, "no_recurrence", "position_rmse")                    # diffs -0.5, 0.3, -0.1: sd 0.4
    assert nr["mean_difference"] == pytest.approx(-0.1)
    assert nr["ci_high"] - nr["mean_difference"] == pytest.approx(4.303 * 0.4 / math.sqrt(3), rel=ROUNDING)
    assert nr["ci_low"] < 0 < nr["ci_high"] and nr["verdict"] == "no clear difference"
    # Higher cosine is better: the sign flips, a positive difference favours the connectome.
    cosine = _pair(paired, "random", "final_home_vector_cosine")            # diffs 0.40, 0.35, 0.40
    assert cosine["mean_difference"] == pytest.approx(1.15 / 3) and cosine["ci_low"] > 0
    assert cosine["verdict"] == "connectome better"
    cosine = _pair(paired, "gru", "final_home_vector_cosine")               # diffs -0.05, -0.10, -0.10
    assert cosine["mean_difference"] == pytest.approx(-0.25 / 3) and cosine["ci_high"] < 0
    assert cosine["verdict"] == "control better"
    # Identical cosines on every seed: zero difference, zero width, no side claimed.
    same = _pair(paired, "no_recurrence", "final_home_vector_cosine")
    assert same["mean_difference"] == 0 and same["verdict"] == "no clear difference"


def test_one_seed_gives_no_interval_and_no_side():
    single = paired_differences(_by_seed({m: {k: v[:1] for k, v in RUN[m].items()} for m in ("cx_bpu", "random")}),
                                "cx_bpu", ["random"], TASK, 0.95)
    row = _pair(single, "random", "position_rmse")
    assert row["mean_difference"] == -1.0 and np.isnan(row["ci_low"]) and np.isnan(row["ci_high"])
    assert set(single["verdict"]) == {"single seed"} and set(single["n_seeds"]) == {1}


def test_five_seed_pairs_use_t_with_four_degrees_of_freedom():
    primary = [1.0, 2.0, 3.0, 4.0, 5.0]
    control = [1.3, 2.1, 3.5, 4.2, 5.4]                       # diffs -0.3 -0.1 -0.5 -0.2 -0.4: mean -0.3
    paired = paired_differences(_by_seed({"cx_bpu": {"position_rmse": primary},
                                          "random": {"position_rmse": control}}), "cx_bpu", ["random"], TASK, 0.95)
    row = _pair(paired, "random", "position_rmse")
    sd = math.sqrt((0 + 0.04 + 0.04 + 0.01 + 0.01) / 4)
    assert row["n_seeds"] == 5 and row["mean_difference"] == pytest.approx(-0.3)
    assert row["ci_high"] - row["mean_difference"] == pytest.approx(2.776 * sd / math.sqrt(5), rel=ROUNDING)
    assert row["verdict"] == "connectome better"


# --- missing pairs and non-finite values ----------------------------------------------------------------

def test_a_control_missing_a_seed_is_reported_not_silently_dropped():
    run = {"cx_bpu": RUN["cx_bpu"], "random": {k: v[:2] + [None] for k, v in RUN["random"].items()}}
    paired = paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95)
    row = _pair(paired, "random", "position_rmse")
    assert row["n_seeds"] == 2 and row["n_excluded"] == 1
    assert parse_seed_list(row["seeds_used"]) == [0, 1]
    assert parse_seed_list(row["seeds_missing_control"]) == [2]
    assert parse_seed_list(row["seeds_missing_primary"]) == [] and parse_seed_list(row["seeds_nonfinite"]) == []
    # Two pairs: diffs -1.0, -1.2 -> mean -1.1, sd sqrt(0.02), t_{0.975,1} = 12.706: the interval spans zero.
    assert row["mean_difference"] == pytest.approx(-1.1)
    assert row["ci_high"] - row["mean_difference"] == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2),
                                                                    rel=ROUNDING)
    assert row["verdict"] == "no clear difference"


def test_a_primary_missing_a_seed_and_a_seed_absent_from_the_table_are_reported():
    run = {"cx_bpu": {k: [None] + v[1:] for k, v in RUN["cx_bpu"].items()}, "random": RUN["random"]}
    paired = paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95, seeds=[0, 1, 2, 3])
    row = _pair(paired, "random", "position_rmse")
    assert parse_seed_list(row["seeds_used"]) == [1, 2] and row["n_seeds"] == 2
    assert parse_seed_list(row["seeds_missing_primary"]) == [0, 3]
    assert parse_seed_list(row["seeds_missing_control"]) == [3]
    assert row["n_excluded"] == 2


def test_a_non_finite_value_removes_its_pair_and_is_listed():
    run = {"cx_bpu": {"position_rmse": [1.0, np.nan, 4.0]},
           "random": {"position_rmse": [2.0, 3.2, 5.1]}}
    paired = paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95)
    row = _pair(paired, "random", "position_rmse")
    assert row["n_seeds"] == 2 and parse_seed_list(row["seeds_nonfinite"]) == [1]
    assert parse_seed_list(row["seeds_used"]) == [0, 2] and row["n_excluded"] == 1
    assert row["mean_difference"] == pytest.approx(-1.05)       # (-1.0 + -1.1) / 2, not over three seeds
    # The other metrics are finite on every seed and keep all three pairs.
    assert _pair(paired, "random", "loss")["n_seeds"] == 3


def test_no_side_is_claimed_on_fewer_than_two_finite_pairs():
    # The connectome is far better on the one seed both models have: still no verdict for a side.
    run = {"cx_bpu": {"position_rmse": [1.0, 1.0, 1.0]},
           "random": {"position_rmse": [9.0, None, np.nan]}}
    paired = paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95)
    row = _pair(paired, "random", "position_rmse")
    assert row["n_seeds"] == 1 and row["mean_difference"] == -8.0 and row["verdict"] == "single seed"
    assert parse_seed_list(row["seeds_missing_control"]) == [1] and parse_seed_list(row["seeds_nonfinite"]) == [2]
    # No finite pair at all.
    run["random"]["position_rmse"] = [np.nan, np.inf, np.nan]
    row = _pair(paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95), "random", "position_rmse")
    assert row["n_seeds"] == 0 and np.isnan(row["mean_difference"]) and row["verdict"] == "no pairs"
    assert parse_seed_list(row["seeds_nonfinite"]) == [0, 1, 2]


def test_seed_lists_survive_a_csv_round_trip(tmp_path):
    run = {"cx_bpu": RUN["cx_bpu"], "random": {k: v[:2] + [None] for k, v in RUN["random"].items()}}
    paired_differences(_by_seed(run), "cx_bpu", ["random"], TASK, 0.95).to_csv(tmp_path / "p.csv", index=False)
    row = _pair(pd.read_csv(tmp_path / "p.csv"), "random", "position_rmse")
    assert parse_seed_list(row["seeds_used"]) == [0, 1] and parse_seed_list(row["seeds_missing_control"]) == [2]
    assert parse_seed_list(row["seeds_nonfinite"]) == []
