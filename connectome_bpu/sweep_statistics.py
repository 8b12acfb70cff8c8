"""Statistics of one experiment's sweep: a leaderboard, paired comparisons of the connectome model with every
other model, and the Markdown report that states them.

Comparisons are *paired* by seed: a seed gives the connectome model and each other model the same adapter
initialisation and data order, so the per-seed difference removes that shared variation, which a
difference of seed means would keep. Every delta is oriented by the metric's declared direction
(``metric_direction``) so that a positive delta always means the primary (connectome) model is better.

A sweep has few seeds (typically 3-10), so each comparison carries several views of the same deltas: a
Student-t interval and paired t-test (they assume roughly normal deltas), and the exact sign-flip and
Wilcoxon signed-rank tests (they assume only symmetry under the null, but with n seeds cannot give a p
below 2 / 2^n). A report compares the primary with several models per metric, so every p-value is also
Holm-adjusted across that metric's comparisons, which bounds the chance of any false claim among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from .errors import BPUInputError
from .metrics import DRIFT_COLUMN, METRIC_COLUMNS, PRIMARY_METRIC, metric_direction
from .model_names import BASELINE_MODELS, CONTROL_NAMES, GRU_MODELS, NO_RECURRENCE
from .results import (
    seed_list,
    sign_flip_p_value,
    summarise,
    summary_metrics,
    t_interval,
)

MATCHED_TOPOLOGY = "matched_topology_control"
REFERENCE_BASELINE = "reference_baseline"
PRIMARY_ROLE = "primary"
# Quantile of the normal approximation an older tool used for its intervals (kept only in parity columns).
NORMAL_975 = 1.96
SIGNIFICANCE = 0.05
P_COLUMNS = ("t_p", "sign_flip_p", "wilcoxon_p")
PAIRED_COLUMNS = ["model", "baseline_model", "comparison_type", "metric", "direction", "split", "T", "n_train",
                  "level", "paired_seed_count", "seeds_used", "n_excluded", "seeds_missing_primary",
                  "seeds_missing_other", "seeds_nonfinite", "mean_delta", "std_delta", "se_delta", "ci_low",
                  "ci_high", *P_COLUMNS, "effect_size_dz", "hedges_gz", "ci95_low_normal", "ci95_high_normal",
                  *(f"{column}_holm" for column in P_COLUMNS)]
EVALUATION_COLUMNS = ("model", "seed", "split", "T", "noise_std", "n_train")


def comparison_type(model: str) -> str:
    """How a model compared with the connectome model should be read.

    Stored topology controls and the model without recurrence are the same architecture with a different
    (or no) recurrent topology: beating them is evidence about the connectome's wiring. GRUs and the mean
    predictor are task-fit references: they say how hard the task is, not whether the wiring matters.
    """
    if model in CONTROL_NAMES or model == NO_RECURRENCE:
        return MATCHED_TOPOLOGY
    if model in GRU_MODELS or model in BASELINE_MODELS:
        return REFERENCE_BASELINE
    raise BPUInputError(f"model {model!r} is neither a topology control ({', '.join(CONTROL_NAMES)}, "
                        f"{NO_RECURRENCE}) nor a reference baseline ({', '.join(GRU_MODELS + BASELINE_MODELS)}); "
                        f"it cannot be compared with the connectome model")


def evaluation_rows(by_seed: pd.DataFrame, *, split: str, T: float, n_train: int,
                    models: Sequence[str]) -> pd.DataFrame:
    """The rows every statistic uses: one per (model, seed) on the given split, length and train size, clean input.

    A second row for the same (model, seed) would be silently averaged or double-counted by any pairing, so
    it is an error, as is a table without the identifying columns.
    """
    missing = [c for c in EVALUATION_COLUMNS if c not in by_seed]
    if missing:
        raise BPUInputError(f"metrics table lacks column(s) {missing}; expected {list(EVALUATION_COLUMNS)}")
    noise = by_seed["noise_std"]
    keep = ((by_seed["split"] == split) & (by_seed["T"] == T) & (by_seed["n_train"] == n_train)
            & (noise.isna() | (noise == 0)) & by_seed["model"].isin(list(models)))
    rows = by_seed[keep]
    duplicated = rows[rows.duplicated(["model", "seed"], keep=False)]
    if not duplicated.empty:
        pairs = sorted({(m, int(s)) for m, s in zip(duplicated["model"], duplicated["seed"])})
        raise BPUInputError(f"metrics table has more than one row for (model, seed) {pairs} on split {split!r}, "
                            f"T={T}, n_train={n_train}, clean input; expected one")
    return rows


@dataclass(frozen=True)
class Pairing:
    """Per-seed deltas of one comparison (positive = primary better) and why each other seed is not in them."""

    seeds_used: list[int]
    deltas: np.ndarray
    missing_primary: list[int]
    missing_other: list[int]
    nonfinite: list[int]

    @property
    def excluded(self) -> list[int]:
        return sorted(set(self.missing_primary) | set(self.missing_other) | set(self.nonfinite))


def _values(rows: pd.DataFrame, model: str, metric: str) -> pd.Series:
    mine = rows[rows["model"] == model]
    return pd.Series(mine[metric].to_numpy(dtype=float), index=mine["seed"].astype(int).to_numpy()).sort_index()


def pair_seeds(rows: pd.DataFrame, primary: str, other: str, metric: str, seeds: Sequence[int]) -> Pairing:
    """Pair the two models seed by seed on one metric; a seed missing or non-finite on either side is dropped.

    ``seeds`` are the run's seeds: each one not used is reported as missing for a model or non-finite.
    """
    if metric not in rows:
        raise BPUInputError(f"metrics table has no column {metric!r}")
    sign = 1.0 if metric_direction(metric) == "higher" else -1.0
    mine, theirs = _values(rows, primary, metric), _values(rows, other, metric)
    common = mine.index.intersection(theirs.index)
    delta = sign * (mine.loc[common] - theirs.loc[common])
    finite = np.isfinite(delta.to_numpy())
    return Pairing(seeds_used=[int(s) for s in common[finite]], deltas=delta.to_numpy()[finite],
                   missing_primary=[s for s in seeds if s not in mine.index],
                   missing_other=[s for s in seeds if s not in theirs.index],
                   nonfinite=[int(s) for s in common[~finite]])


def delta_sd(deltas: np.ndarray) -> float:
    """Sample sd (ddof 1) of the deltas; exactly 0 when all are equal (the float mean of equal values can
    round off them, which would leave a spurious 1e-17 sd and an effect size of 1e16); NaN with fewer than two."""
    if len(deltas) < 2:
        return float("nan")
    return 0.0 if np.ptp(deltas) == 0 else float(np.std(deltas, ddof=1))


def paired_t_p_value(deltas: np.ndarray) -> float:
    """Two-sided paired t-test of a zero mean delta; NaN with fewer than two deltas or none varying (t undefined)."""
    n = len(deltas)
    sd = delta_sd(deltas)
    if not sd > 0:
        return float("nan")
    t = float(np.mean(deltas)) / (sd / np.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def wilcoxon_p_value(deltas: np.ndarray) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value of the deltas.

    Zeros are dropped before ranking (Wilcoxon's own treatment: a seed with no difference has no sign to
    test), so the test runs on the nonzero deltas; NaN when none is left. Without ties among |delta| this is
    scipy's exact signed-rank distribution. With ties that table does not apply, so the p-value is the exact
    sign-flip permutation distribution of the signed mid-ranks: the same test, exact given the tie pattern.
    """
    nonzero = np.asarray(deltas, dtype=float)
    nonzero = nonzero[nonzero != 0]
    if len(nonzero) == 0:
        return float("nan")
    ranks = stats.rankdata(np.abs(nonzero))
    if len(np.unique(ranks)) == len(ranks):
        return float(stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method="exact").pvalue)
    return sign_flip_p_value(np.sign(nonzero) * ranks)


def hedges_correction(df: int) -> float:
    """Hedges' exact small-sample factor J(df) = Γ(df/2) / (√(df/2) Γ((df-1)/2)), for df >= 2.

    d_z = mean / sd overstates the true standardized effect with few seeds; multiplying by J removes that
    bias (J = 0.80 at four degrees of freedom).
    """
    return float(np.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / np.sqrt(df / 2))


def delta_statistics(deltas: np.ndarray, level: float) -> dict[str, float]:
    """Interval, tests and effect sizes of one comparison's per-seed deltas (all finite).

    ``ci_low``/``ci_high`` are Student's t interval at ``level``; ``ci95_low_normal``/``ci95_high_normal``
    are mean ± 1.96·se, an older tool's normal-approximation columns, kept only so numbers can be compared
    with it (with 5 seeds they are ~30 % too narrow). Effect sizes are NaN when sd is 0 or n < 2, and
    Hedges' g_z also for n = 2, where its correction factor is 0.
    """
    n = len(deltas)
    mean, low, high = t_interval(deltas, level)
    sd = delta_sd(deltas)
    se = sd / np.sqrt(n) if n > 1 else float("nan")
    dz = mean / sd if sd > 0 else float("nan")
    return {"mean_delta": mean, "std_delta": sd, "se_delta": se, "ci_low": low, "ci_high": high,
            "t_p": paired_t_p_value(deltas), "sign_flip_p": sign_flip_p_value(deltas),
            "wilcoxon_p": wilcoxon_p_value(deltas), "effect_size_dz": dz,
            "hedges_gz": dz * hedges_correction(n - 1) if n > 2 else float("nan"),
            "ci95_low_normal": mean - NORMAL_975 * se, "ci95_high_normal": mean + NORMAL_975 * se}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), made non-decreasing in that order and
    capped at 1; a family-wise error bound that holds without assuming the tests are independent (they are
    not: every comparison shares the primary's seeds). NaN p-values (no test was possible) stay NaN and
    do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = (len(order) - np.arange(len(order))) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``<p>_holm`` columns: Holm across every comparison of one metric (all baselines) in the table."""
    for column in P_COLUMNS:
        table[f"{column}_holm"] = table.groupby("metric", sort=False)[column].transform(lambda p: holm(p.to_numpy()))
    return table


def _run_seeds(rows: pd.DataFrame) -> list[int]:
    return sorted(int(s) for s in rows["seed"].unique())


def paired_comparisons(by_seed: pd.DataFrame, *, primary: str, models: Sequence[str], split: str, T: float,
                       n_train: int, metrics: Sequence[str], level: float) -> pd.DataFrame:
    """The primary model against each other model of ``models``, per metric, paired by seed (``PAIRED_COLUMNS``).

    Deltas are oriented so positive = primary better. Only seeds with a finite value for both models are
    paired (``paired_seed_count``, ``seeds_used``); every other seed of the run is listed as missing for a
    model or non-finite and counted in ``n_excluded``. A model with no rows still gets its rows, with no
    pairs and NaN statistics, so an absent model is visible rather than silently dropped.
    """
    others = [m for m in models if m != primary]
    types = {m: comparison_type(m) for m in others}
    rows = evaluation_rows(by_seed, split=split, T=T, n_train=n_train, models=[primary, *others])
    seeds = _run_seeds(rows)
    records = []
    for metric in metrics:
        direction = metric_direction(metric)
        for other in others:
            pairing = pair_seeds(rows, primary, other, metric, seeds)
            records.append({"model": primary, "baseline_model": other, "comparison_type": types[other],
                            "metric": metric, "direction": direction, "split": split, "T": T, "n_train": n_train,
                            "level": level, "paired_seed_count": len(pairing.seeds_used),
                            "seeds_used": seed_list(pairing.seeds_used), "n_excluded": len(pairing.excluded),
                            "seeds_missing_primary": seed_list(pairing.missing_primary),
                            "seeds_missing_other": seed_list(pairing.missing_other),
                            "seeds_nonfinite": seed_list(pairing.nonfinite),
                            **delta_statistics(pairing.deltas, level)})
    return _with_holm(pd.DataFrame(records, columns=PAIRED_COLUMNS[:-len(P_COLUMNS)]))


def matched_topology_comparisons(paired: pd.DataFrame) -> pd.DataFrame:
    """The comparisons with the same architecture on another (or no) topology: the connectome evidence proper."""
    return paired[paired["comparison_type"] == MATCHED_TOPOLOGY].reset_index(drop=True)


def _primary_deltas(rows: pd.DataFrame, primary: str, models: Sequence[str], metric: str) -> list[np.ndarray]:
    """Each model's paired deltas against the primary (positive = primary better); none for the primary itself."""
    seeds = _run_seeds(rows)
    return [np.array([]) if m == primary else pair_seeds(rows, primary, m, metric, seeds).deltas for m in models]


def leaderboard(by_seed: pd.DataFrame, *, task: str, primary: str, split: str, T: float, n_train: int,
                models: Sequence[str], primary_metric: str, level: float) -> pd.DataFrame:
    """One row per model of ``models``, best first by the primary metric's declared direction.

    Columns: ``rank`` (int 1..n; models with no finite value of the primary metric last, ties kept in
    ``models`` order), ``model``, ``role`` (``primary`` or the comparison type), then ``summarise``'s columns
    (split, T, noise_std, n_train, n_seeds and, per metric of the task present, ``_mean``, ``_std``,
    ``_ci_low``, ``_ci_high``, ``_n_seeds``, ``_n_excluded``), and ``primary_paired_delta`` /
    ``primary_paired_n``: the primary's mean per-seed advantage over this model on the primary metric over
    their common seeds (positive = primary better; the same number as the paired comparisons' ``mean_delta``).
    It is NaN with n 0 on the primary's own row. A model with no rows is listed with ``n_seeds`` 0.
    """
    descending = metric_direction(primary_metric) == "higher"
    if primary_metric not in summary_metrics(task) or primary_metric not in by_seed:
        raise BPUInputError(f"primary metric {primary_metric!r} is not a metric of task {task!r} in the metrics "
                            f"table; expected one of {[m for m in summary_metrics(task) if m in by_seed]}")
    rows = evaluation_rows(by_seed, split=split, T=T, n_train=n_train, models=models)
    if rows.empty:
        raise BPUInputError(f"metrics table has no row for models {list(models)} on split {split!r}, T={T}, "
                            f"n_train={n_train}, clean input; nothing to rank")
    board = summarise(rows, task, level).set_index("model").reindex(list(models)).reset_index()
    board["n_seeds"] = board["n_seeds"].fillna(0).astype(int)
    board = board.fillna({"split": split, "T": T, "n_train": n_train})
    board.insert(1, "role", [PRIMARY_ROLE if m == primary else comparison_type(m) for m in board["model"]])
    deltas = _primary_deltas(rows, primary, list(board["model"]), primary_metric)
    board["primary_paired_delta"] = [float(np.mean(d)) if len(d) else np.nan for d in deltas]
    board["primary_paired_n"] = [len(d) for d in deltas]
    board = board.sort_values(f"{primary_metric}_mean", ascending=not descending, na_position="last",
                              kind="stable").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1, dtype=int))
    return board


def _cell(value: object) -> str:
    """A table cell: integers as integers, other numbers to 4 significant digits, missing values as n/a."""
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _interval(low: float, high: float) -> str:
    return f"[{_cell(low)}, {_cell(high)}]"


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    if not body:
        return "_No rows._"
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _percent(level: float) -> str:
    return f"{level * 100:g}%"


def _leaderboard_table(board: pd.DataFrame, metric: str, primary: str, level: float) -> str:
    header = ["Rank", "Model", "Role", "Seeds", f"{metric} mean", "sd", f"{_percent(level)} t interval",
              f"{primary}'s paired advantage", "Paired seeds"]
    body = [[_cell(r["rank"]), str(r["model"]), str(r["role"]), _cell(r[f"{metric}_n_seeds"]),
             _cell(r[f"{metric}_mean"]), _cell(r[f"{metric}_std"]),
             _interval(r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]), _cell(r["primary_paired_delta"]),
             _cell(r["primary_paired_n"])] for _, r in board.iterrows()]
    return markdown_table(header, body)


def _primary_metric_rows(paired: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The primary metric's comparisons, matched-topology controls first, each group in table order."""
    rows = paired[paired["metric"] == metric]
    first = rows["comparison_type"] != MATCHED_TOPOLOGY
    return rows.assign(_later=first).sort_values("_later", kind="stable").drop(columns="_later")


def _paired_table(rows: pd.DataFrame, level: float) -> str:
    header = ["Model", "Compared with", "Type", "Seeds", f"Delta [{_percent(level)} t interval]", "t p",
              "Holm t p", "Sign-flip p", "Wilcoxon p", "Holm sign-flip p", "Effect d_z"]
    body = [[str(r["model"]), str(r["baseline_model"]), str(r["comparison_type"]), _cell(r["paired_seed_count"]),
             f"{_cell(r['mean_delta'])} {_interval(r['ci_low'], r['ci_high'])}", _cell(r["t_p"]),
             _cell(r["t_p_holm"]), _cell(r["sign_flip_p"]), _cell(r["wilcoxon_p"]), _cell(r["sign_flip_p_holm"]),
             _cell(r["effect_size_dz"])] for _, r in rows.iterrows()]
    return markdown_table(header, body)


def seeds_needed(comparisons: int, alpha: float = SIGNIFICANCE) -> int:
    """Fewest paired seeds n for which an exact test's floor 2 / 2^n, times Holm's factor, falls below ``alpha``."""
    n = 1
    while max(comparisons, 1) * 2.0 / 2**n >= alpha:
        n += 1
    return n


def _floor_sentence(rows: pd.DataFrame) -> str:
    """What the exact tests can show with the seeds at hand: their smallest possible p, and the seeds needed."""
    counts = sorted({int(n) for n in rows["paired_seed_count"] if n > 0})
    if not counts:
        return "No comparison has a paired seed, so no test was possible."
    floors = "; ".join(f"2/2^{n} = {_cell(2.0 / 2**n)} with {n} paired seeds" for n in counts)
    k = int(rows["sign_flip_p"].notna().sum())
    return (f"The exact sign-flip and Wilcoxon tests are reported beside it as checks that assume no distribution; "
            f"with n paired seeds they cannot give a p below 2/2^n: {floors}. Holm multiplies the smallest of this "
            f"metric's {k} p-values by {k}, so at least {seeds_needed(k)} paired seeds are needed before an exact "
            f"test here can reach {SIGNIFICANCE}.")


def _signal_sentence(rows: pd.DataFrame, primary: str) -> str:
    matched = rows[rows["comparison_type"] == MATCHED_TOPOLOGY]
    if matched.empty:
        return "There is no matched-topology control in this sweep, so it cannot show a connectome signal."
    signal = matched[(matched["ci_low"] > 0) & (matched["t_p_holm"] < SIGNIFICANCE)]
    beaten = ", ".join(f"`{m}`" for m in signal["baseline_model"]) or "none"
    return (f"By this criterion {primary} shows a connectome signal against {len(signal)} of {len(matched)} "
            f"matched-topology controls ({beaten}).")


def _interpretation(rows: pd.DataFrame, primary: str, metric: str, direction: str, level: float) -> str:
    return (f"Each delta is {primary}'s per-seed advantage on `{metric}` ({direction} is better), paired by seed, "
            f"so a positive delta favours {primary}. A connectome signal means beating the same-architecture "
            f"topology controls (the same model on shuffled, rewired or redrawn weights, or without recurrence) "
            f"across seeds: a {_percent(level)} Student-t interval that excludes zero and a Holm-adjusted paired "
            f"t-test p below {SIGNIFICANCE}. GRUs and the mean predictor are reference baselines for how hard "
            f"the task is, not topology controls. {_floor_sentence(rows)} {_signal_sentence(rows, primary)}")


def _primary_name(board: pd.DataFrame, paired: pd.DataFrame) -> str:
    named = board.loc[board["role"] == PRIMARY_ROLE, "model"] if "role" in board else pd.Series(dtype=object)
    if len(named):
        return str(named.iloc[0])
    return str(paired["model"].iloc[0]) if len(paired) else "the primary model"


def sweep_report_markdown(*, experiment: str, leaderboard: pd.DataFrame, paired: pd.DataFrame, primary_metric: str,
                          direction: str, n_jobs: int, seeds: Sequence[int], level: float) -> str:
    """The sweep's Markdown report: leaderboard and paired comparisons on the primary metric, and how to read them."""
    primary = _primary_name(leaderboard, paired)
    rows = _primary_metric_rows(paired, primary_metric)
    seed_text = ", ".join(str(int(s)) for s in seeds) or "none"
    return "\n".join([
        f"# Sweep report: {experiment}", "",
        f"Jobs: {n_jobs}; seeds: {len(seeds)} ({seed_text}).", "",
        f"Primary metric: `{primary_metric}` ({direction} is better).", "",
        "## Leaderboard", "",
        _leaderboard_table(leaderboard, primary_metric, primary, level), "",
        f"## Paired comparisons: `{primary_metric}`", "",
        (f"Delta = {primary}'s per-seed advantage (positive = {primary} better). Holm adjusts across every "
         f"comparison of this metric."), "",
        _paired_table(rows, level), "",
        "## Interpretation", "",
        _interpretation(rows, primary, primary_metric, direction, level), "",
    ])


def sweep_statistics(by_seed: pd.DataFrame, *, experiment: str, task: str, primary: str, models: Sequence[str],
                     split: str, T: float, n_train: int, level: float) -> dict[str, pd.DataFrame | str]:
    """Every sweep statistic of one experiment: ``leaderboard``, ``paired_comparisons`` (every metric of the task
    present, plus the drift slope), ``matched_topology_comparisons`` and the report text under ``markdown``.

    ``n_jobs`` in the report counts the (model, seed, n_train) runs of ``models`` with a metrics row.
    """
    primary_metric = PRIMARY_METRIC[task]
    metrics = [m for m in [*METRIC_COLUMNS[task], DRIFT_COLUMN] if m in by_seed]
    board = leaderboard(by_seed, task=task, primary=primary, split=split, T=T, n_train=n_train, models=models,
                        primary_metric=primary_metric, level=level)
    paired = paired_comparisons(by_seed, primary=primary, models=models, split=split, T=T, n_train=n_train,
                                metrics=metrics, level=level)
    ran = by_seed[by_seed["model"].isin(list(models))]
    markdown = sweep_report_markdown(experiment=experiment, leaderboard=board, paired=paired,
                                     primary_metric=primary_metric, direction=metric_direction(primary_metric),
                                     n_jobs=len(ran[["model", "seed", "n_train"]].drop_duplicates()),
                                     seeds=_run_seeds(ran), level=level)
    return {"leaderboard": board, "paired_comparisons": paired,
            "matched_topology_comparisons": matched_topology_comparisons(paired), "markdown": markdown}
