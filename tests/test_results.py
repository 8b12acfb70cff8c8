"""Aggregation statistics: t intervals, summaries over seeds, paired differences and their verdicts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from connectome_bpu.results import concat_job_tables, paired_differences, summarise, t_interval


def test_t_interval_matches_scipy_and_handles_one_seed():
    values = np.array([1.0, 2.0, 4.0])
    mean, low, high = t_interval(values, 0.95)
    expected = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean()) and (low, high) == pytest.approx(expected)
    mean, low, high = t_interval(np.array([3.0, np.nan]), 0.95)
    assert mean == 3.0 and np.isnan(low) and np.isnan(high)


def _by_seed(errors: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for model, values in errors.items():
        for seed, value in enumerate(values):
            rows.append({"seed": seed, "model": model, "task": "cartesian", "split": "test", "T": 50,
                         "noise_std": 0.0, "n_train": 100, "loss": value, "heading_angular_error": value,
                         "position_rmse": value, "final_home_vector_cosine": -value,
                         "final_displacement_error": value, "drift_slope_vs_T": value,
                         "trainable_parameter_count": 10, "recurrent_train_mode": "frozen"})
    return pd.DataFrame(rows)


def test_summary_has_mean_sd_interval_per_model():
    table = summarise(_by_seed({"cx_bpu": [1.0, 2.0, 3.0], "random": [2.0, 2.0, 2.0]}), "cartesian", 0.95)
    row = table[table["model"] == "cx_bpu"].iloc[0]
    assert row["position_rmse_mean"] == 2.0 and row["position_rmse_std"] == 1.0 and row["n_seeds"] == 3
    assert row["position_rmse_ci_low"] < 2.0 < row["position_rmse_ci_high"]


def test_paired_differences_are_paired_by_seed_and_give_verdicts():
    # The connectome is better on every seed by exactly 1, although seeds vary a lot: pairing removes that.
    by_seed = _by_seed({"cx_bpu": [1.0, 5.0, 9.0], "random": [2.0, 6.0, 10.0], "flat": [1.0, 5.0, 9.0]})
    paired = paired_differences(by_seed, "cx_bpu", ["random", "flat"], "cartesian", 0.95)
    rmse = paired[(paired["control"] == "random") & (paired["metric"] == "position_rmse")].iloc[0]
    assert rmse["mean_difference"] == -1.0 and rmse["verdict"] == "connectome better"
    cosine = paired[(paired["control"] == "random") & (paired["metric"] == "final_home_vector_cosine")].iloc[0]
    assert cosine["mean_difference"] == 1.0 and cosine["verdict"] == "connectome better"
    same = paired[(paired["control"] == "flat") & (paired["metric"] == "position_rmse")].iloc[0]
    assert same["verdict"] == "no clear difference"
    single = paired_differences(by_seed[by_seed["seed"] == 0], "cx_bpu", ["random"], "cartesian", 0.95)
    assert set(single["verdict"]) == {"single seed"}


def test_concat_orders_seed_then_config_model_order(tmp_path):
    for name, model in (("a.csv", "random"), ("b.csv", "cx_bpu")):
        _by_seed({model: [1.0, 2.0]}).to_csv(tmp_path / name, index=False)
    table = concat_job_tables([tmp_path / "a.csv", tmp_path / "b.csv"], ["cx_bpu", "random"])
    assert list(zip(table["seed"], table["model"])) == [(0, "cx_bpu"), (0, "random"), (1, "cx_bpu"), (1, "random")]


def test_wall_clock_columns_are_named_as_such_and_only_they_measure_time():
    from connectome_bpu.training_job import HISTORY_COLUMNS, INFO_COLUMNS, WALLCLOCK_LATENCY
    from connectome_bpu.results import EXTRA_SUMMARY_METRICS

    timing = re.compile(r"latency|seconds|elapsed|duration|wall|(^|_)time(_|$)", re.IGNORECASE)   # not `runtime`
    assert WALLCLOCK_LATENCY == "wallclock_latency_ms_per_sequence" and WALLCLOCK_LATENCY in INFO_COLUMNS
    for column in (*INFO_COLUMNS, *HISTORY_COLUMNS, *EXTRA_SUMMARY_METRICS):
        assert column.startswith("wallclock_") or not timing.search(column), column
    assert not any(c.startswith("wallclock_") for c in HISTORY_COLUMNS)   # per-epoch seconds stay in the log
    summary = summarise(_by_seed({"cx_bpu": [1.0, 2.0]}).assign(wallclock_latency_ms_per_sequence=[0.3, 0.5]),
                        "cartesian", 0.95)
    assert [c for c in summary if timing.search(c)] == [f"wallclock_latency_ms_per_sequence_{s}" for s in
                                                        ("mean", "std", "ci_low", "ci_high", "n_seeds", "n_excluded")]
