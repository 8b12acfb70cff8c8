"""Aggregation over jobs: metrics_by_seed, metrics_summary (with intervals), paired differences.

The scientific comparison is *paired*: for each seed the connectome model and a control share the
adapter initialisation and the data order, so the per-seed difference removes that variation. The
interval of a mean over seeds is Student's t interval at the configured level; with one seed it is
undefined (NaN), and reports say so rather than inventing precision.

Nothing is averaged over fewer seeds without saying so: ``metrics_summary.csv`` counts, per metric, the
seeds it used and those it excluded as non-finite, and ``paired_differences.csv`` lists, per comparison,
the seeds it paired and every seed it could not pair (missing for either model, or non-finite), so a
summary can state "2 of 3 seeds" (docs/method.md#statistics).
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .metrics import DRIFT_COLUMN, HIGHER_IS_BETTER, METRIC_COLUMNS
# Wall-clock columns (they differ between identical runs) are named ``wallclock_...``.
EXTRA_SUMMARY_METRICS = (DRIFT_COLUMN, "wallclock_latency_ms_per_sequence", "final_train_loss", "best_val_loss",
                         "epochs_ran")
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
    """(mean, low, high) of the mean over the finite values; low/high are NaN with fewer than two.

    Non-finite values are left out here; callers that report a sample size count them themselves
    (``summarise``, ``paired_differences``) so that the exclusion is stated, not silent.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan
    # Imported here, not at the top: every workflow start imports this module, and few of its users need stats.
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def seed_list(seeds: Iterable) -> str:
    """Seeds as a JSON list (``"[0, 2]"``, ``"[]"``): one cell, read back as a string by any CSV reader."""
    return json.dumps(sorted(int(s) for s in seeds))


def parse_seed_list(cell) -> list[int]:
    """The seeds of a ``seed_list`` cell; an empty or missing cell is no seed."""
    if cell is None or (isinstance(cell, float) and not np.isfinite(cell)) or str(cell).strip() in ("", "nan"):
        return []
    return [int(s) for s in json.loads(str(cell))]


def summarise(by_seed: pd.DataFrame, task: str, level: float) -> pd.DataFrame:
    """One row per (model, split, T, noise, n_train): mean, sd, interval and seed counts per metric.

    ``n_seeds`` counts the row's seeds; ``<metric>_n_seeds`` those whose value of the metric is finite
    (the mean, sd with ddof=1 and interval use only these) and ``<metric>_n_excluded`` those left out as
    non-finite.
    """
    metrics = [m for m in summary_metrics(task) if m in by_seed]
    rows = []
    for key, group in by_seed.groupby(GROUP, sort=False, dropna=False):
        row = dict(zip(GROUP, key))
        row["n_seeds"] = int(group["seed"].nunique())
        for metric in metrics:
            values = group[metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            mean, low, high = t_interval(finite, level)
            row[f"{metric}_mean"] = mean
            row[f"{metric}_std"] = float(finite.std(ddof=1)) if len(finite) > 1 else np.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = low, high
            row[f"{metric}_n_seeds"] = len(finite)
            row[f"{metric}_n_excluded"] = len(values) - len(finite)
        for column in FIRST_VALUE_COLUMNS:
            if column in group:
                row[column] = group[column].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


PAIR_KEYS = ["split", "T", "noise_std", "n_train"]


def paired_differences(by_seed: pd.DataFrame, primary: str, others: Sequence[str], task: str,
                       level: float, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Per metric and split: mean over seeds of (primary - other), its interval, and a verdict.

    Seeds are paired, never averaged unpaired: ``n_seeds`` is the number of seeds with a finite value
    for both models (``seeds_used``). Every other seed of the run (``seeds``, by default every seed of
    ``by_seed``) is listed with why it was left out: ``seeds_missing_primary`` / ``seeds_missing_control``
    (no row for that model) or ``seeds_nonfinite`` (a row on both sides, but a non-finite value on one);
    ``n_excluded`` counts them. A model with no row at all is not compared (no rows are written for it).

    ``verdict`` is ``connectome better`` / ``control better`` only when the interval excludes zero in
    that direction (lower is better for errors and losses, higher for cosines), else ``no clear
    difference``; with one finite pair it is ``single seed`` and with none ``no pairs``, because no
    interval exists.
    """
    metrics = [m for m in METRIC_COLUMNS[task] if m in by_seed] + [DRIFT_COLUMN]
    run_seeds = sorted({int(s) for s in (by_seed["seed"] if seeds is None else seeds)})
    base = by_seed[by_seed["model"] == primary]
    rows = []
    for other in others:
        theirs = by_seed[by_seed["model"] == other]
        if theirs.empty or base.empty:
            continue
        paired = base.merge(theirs, how="outer", on=["seed"] + PAIR_KEYS, suffixes=("", "_other"),
                            indicator=True)
        for (split, T, noise, n_train), group in paired.groupby(PAIR_KEYS, sort=False, dropna=False):
            group = group.set_index("seed")
            both = group.index[group["_merge"] == "both"]
            has_primary = {int(s) for s in group.index[group["_merge"] != "right_only"]}
            has_control = {int(s) for s in group.index[group["_merge"] != "left_only"]}
            missing_primary = [s for s in run_seeds if s not in has_primary]
            missing_control = [s for s in run_seeds if s not in has_control]
            for metric in metrics:
                diff = (group.loc[both, metric] - group.loc[both, f"{metric}_other"]).astype(float)
                used = sorted(int(s) for s in diff.index[np.isfinite(diff.to_numpy())])
                nonfinite = sorted(int(s) for s in diff.index if int(s) not in used)
                mean, low, high = t_interval(diff.loc[used].to_numpy(), level)
                excluded = sorted(set(missing_primary) | set(missing_control) | set(nonfinite))
                rows.append({"primary": primary, "control": other, "split": split, "T": T, "noise_std": noise,
                             "n_train": n_train, "metric": metric, "n_seeds": len(used),
                             "mean_difference": mean, "ci_low": low, "ci_high": high,
                             "verdict": interval_verdict(metric, low, high, len(used)),
                             "seeds_used": seed_list(used), "n_excluded": len(excluded),
                             "seeds_missing_primary": seed_list(missing_primary),
                             "seeds_missing_control": seed_list(missing_control),
                             "seeds_nonfinite": seed_list(nonfinite)})
    return pd.DataFrame(rows)


def interval_verdict(metric: str, low: float, high: float, n: int) -> str:
    """The side an interval supports; none with fewer than two finite pairs (no interval exists)."""
    if n < 1:
        return "no pairs"
    if n < 2:
        return "single seed"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no clear difference"
    better_if_negative = metric not in HIGHER_IS_BETTER
    if high < 0:
        return "connectome better" if better_if_negative else "control better"
    if low > 0:
        return "control better" if better_if_negative else "connectome better"
    return "no clear difference"


def sign_flip_p_value(differences: Sequence[float]) -> float:
    """Exact two-sided paired sign-flip permutation p-value of the mean of ``differences`` (finite values).

    Under the null of no difference each paired difference is as likely positive as negative, so every
    one of the 2^n sign assignments is equally likely; p is the share whose |mean| is at least the
    observed one. It assumes no distribution, but with n pairs it cannot go below 2 / 2^n (0.25 for three
    seeds), which is why reports print n beside it. NaN with no finite difference.
    """
    values = np.asarray(differences, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return float("nan")
    if n > 20:
        raise ValueError(f"exact sign-flip test over {n} pairs would enumerate 2^{n} assignments; expected <= 20")
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    means = np.abs(signs @ values) / n
    observed = abs(values.mean())
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))
