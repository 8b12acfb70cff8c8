"""Aggregation over jobs: metrics_by_seed, metrics_summary (with intervals), paired differences.

The scientific comparison is *paired*: for each seed the connectome model and a control share the
adapter initialisation and the data order, so the per-seed difference removes that variation. The
interval of a mean over seeds is Student's t interval at the configured level; with one seed it is
undefined (NaN), and reports say so rather than inventing precision.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import DRIFT_COLUMN, METRIC_COLUMNS

HIGHER_IS_BETTER = frozenset({"final_home_vector_cosine"})
EXTRA_SUMMARY_METRICS = (DRIFT_COLUMN, "latency_ms_per_sequence", "final_train_loss", "best_val_loss", "epochs_ran")
FIRST_VALUE_COLUMNS = ("trainable_parameter_count", "frozen_edge_count", "recurrent_parameter_count",
                       "trainable_recurrent_parameter_count", "recurrent_train_mode", "runtime", "K")
GROUP = ["model", "split", "T", "noise_std", "n_train"]


def summary_metrics(task: str) -> list[str]:
    return list(METRIC_COLUMNS[task]) + list(EXTRA_SUMMARY_METRICS)


def concat_job_tables(paths: Iterable[str], model_order: Sequence[str]) -> pd.DataFrame:
    """Stack per-job CSVs, ordered seed -> model (config order) -> split, like the original benchmark."""
    frames = [pd.read_csv(p) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    rank = {m: i for i, m in enumerate(model_order)}
    order = table["model"].map(rank).fillna(len(rank))
    keys = ["seed", "_model_rank"] + [c for c in ("n_train", "split", "T", "noise_std", "epoch") if c in table]
    return (table.assign(_model_rank=order).sort_values(keys, kind="stable")
            .drop(columns="_model_rank").reset_index(drop=True))


def t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """(mean, low, high) of the mean; low/high are NaN with fewer than two finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def summarise(by_seed: pd.DataFrame, task: str, level: float) -> pd.DataFrame:
    """One row per (model, split, T, noise, n_train): mean, sd, interval and seed count per metric."""
    metrics = [m for m in summary_metrics(task) if m in by_seed]
    rows = []
    for key, group in by_seed.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["n_seeds"] = int(group["seed"].nunique())
        for metric in metrics:
            mean, low, high = t_interval(group[metric].to_numpy(), level)
            row[f"{metric}_mean"] = mean
            row[f"{metric}_std"] = float(group[metric].std(ddof=1)) if len(group) > 1 else np.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
        for column in FIRST_VALUE_COLUMNS:
            if column in group:
                row[column] = group[column].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(by_seed: pd.DataFrame, primary: str, others: Sequence[str], task: str,
                       level: float) -> pd.DataFrame:
    """Per metric and split: mean over seeds of (primary - other), its interval, and a verdict.

    ``verdict`` is ``connectome better`` / ``control better`` only when the interval excludes zero in
    that direction (lower is better for errors and losses, higher for cosines), else ``no clear
    difference``; with a single seed it is ``single seed`` because no interval exists.
    """
    metrics = [m for m in METRIC_COLUMNS[task] if m in by_seed] + [DRIFT_COLUMN]
    keys = ["seed", "split", "T", "noise_std", "n_train"]
    base = by_seed[by_seed["model"] == primary].set_index(keys)
    rows = []
    for other in others:
        paired = base.merge(by_seed[by_seed["model"] == other].set_index(keys), how="inner", left_index=True,
                            right_index=True, suffixes=("", "_other"))
        if paired.empty:
            continue
        for (split, T, noise, n_train), group in paired.groupby(level=["split", "T", "noise_std", "n_train"],
                                                                  sort=False):
            for metric in metrics:
                diff = (group[metric] - group[f"{metric}_other"]).to_numpy(dtype=float)
                mean, low, high = t_interval(diff, level)
                rows.append({"primary": primary, "control": other, "split": split, "T": T, "noise_std": noise,
                             "n_train": n_train, "metric": metric, "n_seeds": int(np.isfinite(diff).sum()),
                             "mean_difference": mean, "ci_low": low, "ci_high": high,
                             "verdict": _verdict(metric, low, high, len(diff))})
    return pd.DataFrame(rows)


def _verdict(metric: str, low: float, high: float, n: int) -> str:
    if n < 2 or not np.isfinite(low):
        return "single seed"
    better_if_negative = metric not in HIGHER_IS_BETTER
    if high < 0:
        return "connectome better" if better_if_negative else "control better"
    if low > 0:
        return "control better" if better_if_negative else "connectome better"
    return "no clear difference"
