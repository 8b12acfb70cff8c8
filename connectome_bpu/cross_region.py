"""Cross-region transfer: does a task family run better on the region it belongs to?

Each family (associative memory, path integration) names three experiments of the DAG: the task on its
own region (``matched``: MB for associative, CX for path), on the other region (``mismatched``) and,
optionally, on the other region cut or expanded to the matched one's size (``size_matched``,
connectome_bpu.size_match). They are ordinary experiments: one training job per model x seed, shared
splits and seeds. This module pairs them over seeds.

Per family and seed the success value is the connectome model's primary metric of the task
(``metrics.PRIMARY_METRIC``) on the clean test split at the training length: recall after reversal for
the associative task, the heading (or home-bearing) error for the path tasks. The original benchmark
scored path conditions at four times the training length, where observed-mode runs can diverge, and
never paired the conditions; here every comparison is a per-seed paired difference, oriented so that a
positive "matched advantage" favours the matched region, with its Student-t interval and an exact
sign-flip permutation p-value (docs/departures.md#cross-region).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import BPUInputError
from .experiments import Experiment
from .metrics import HIGHER_IS_BETTER, PRIMARY_METRIC
from .results import sign_flip_p_value, t_interval
from .substrates import is_synthetic

CONDITIONS = ("matched", "mismatched", "size_matched")
SUCCESS_COLUMNS = ["family", "condition", "experiment", "substrate", "task", "model", "seed", "metric", "value",
                   "higher_is_better"]


@dataclass(frozen=True)
class TransferFamily:
    """One task family's conditions, each the name of an experiment (size_matched may be absent)."""

    family: str
    matched: str
    mismatched: str
    size_matched: str | None = None

    def conditions(self) -> list[tuple[str, str]]:
        """(condition, experiment name) of every condition present, matched first."""
        return [(c, getattr(self, c)) for c in CONDITIONS if getattr(self, c)]


def resolve_cross_region(config: Mapping[str, Any], experiments: Mapping[str, Experiment]) -> list[TransferFamily]:
    """The ``cross_region`` entries of a config, checked against its experiments; one error lists every problem.

    The conditions of a family must be distinct experiments on the same task variant (same splits), the
    same seeds and the same training settings (recurrent mode, plasticity and every other number-changing
    training knob), with the matched and mismatched ones on different substrates,
    and a size-matched condition must be size-matched to the matched one: otherwise their per-seed
    differences would not be paired comparisons of regions.
    """
    entries = config.get("cross_region") or []
    families, problems = [], []
    for entry in entries:
        family = TransferFamily(**{k: entry.get(k) for k in ("family", "matched", "mismatched", "size_matched")})
        label = f"cross_region family '{family.family}'"
        names = [name for _, name in family.conditions()]
        unknown = [name for name in names if name not in experiments]
        if unknown:
            problems.append(f"{label}: {', '.join(repr(n) for n in unknown)} is not an experiment of this config; "
                            f"expected one of {', '.join(experiments)}")
            continue
        runs = [experiments[name] for name in names]
        if len(set(names)) < len(names):
            problems.append(f"{label}: its conditions must be different experiments; got {names}")
        for key, what in (("task_variant", "task and splits"), ("seeds", "seeds"),
                          ("training", "training settings (recurrent mode, plasticity, optimiser)")):
            values = {str(getattr(run, key)) for run in runs}
            if len(values) > 1:
                problems.append(f"{label}: experiments {', '.join(names)} must share their {what}; found "
                                f"{', '.join(sorted(values))}")
        if experiments[family.matched].substrate == experiments[family.mismatched].substrate:
            problems.append(f"{label}: matched and mismatched experiments run on the same substrate "
                            f"'{experiments[family.matched].substrate}'; expected two regions")
        if family.size_matched:
            match = experiments[family.size_matched].config.get("size_match") or {}
            if match.get("like") != family.matched:
                problems.append(f"{label}: experiment '{family.size_matched}' must set size_match.like to the matched "
                                f"experiment '{family.matched}' (found {match.get('like')!r})")
        families.append(family)
    if len({f.family for f in families}) < len(families):
        problems.append("cross_region: family names must be unique")
    if problems:
        raise BPUInputError("invalid cross_region:\n  - " + "\n  - ".join(problems))
    return families


def condition_info(family: TransferFamily, experiments: Mapping[str, Experiment]) -> list[dict]:
    """Plain records (for a rule's params) of what to read from each condition's metrics_by_seed.csv."""
    return [{"family": family.family, "condition": condition, "experiment": name,
             "substrate": experiments[name].substrate, "task": experiments[name].task["name"],
             "model": experiments[name].primary, "train_T": experiments[name].train_T,
             "n_train": experiments[name].n_train, "synthetic": is_synthetic(experiments[name].config)}
            for condition, name in family.conditions()]


def success_by_seed(by_seed: Mapping[str, pd.DataFrame], conditions: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per (family, condition, seed): the connectome's primary metric, clean test, training length."""
    rows = []
    for info in conditions:
        frame = by_seed[info["experiment"]]
        metric = PRIMARY_METRIC[info["task"]]
        picked = frame[(frame["model"] == info["model"]) & (frame["split"] == "test") & (frame["T"] == info["train_T"])
                       & (frame["n_train"] == info["n_train"])]
        if picked.empty:
            raise BPUInputError(f"experiment {info['experiment']}: metrics_by_seed.csv has no clean test row of "
                                f"{info['model']} at T={info['train_T']}")
        for seed, value in zip(picked["seed"], picked[metric]):
            rows.append({**{k: info[k] for k in ("family", "condition", "experiment", "substrate", "task", "model")},
                         "seed": int(seed), "metric": metric, "value": float(value),
                         "higher_is_better": metric in HIGHER_IS_BETTER})
    return pd.DataFrame(rows, columns=SUCCESS_COLUMNS)


@dataclass(frozen=True)
class Advantage:
    """Matched advantage over one other condition, paired over seeds (positive favours the matched region)."""

    family: str
    comparison: str
    metric: str
    n_pairs: int
    seeds: str
    mean: float
    ci_low: float
    ci_high: float
    sign_flip_p: float
    verdict: str


def matched_advantage(success: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per family, matched minus each other condition, oriented so that positive means the matched region wins."""
    rows = []
    for family, rows_of_family in success.groupby("family", sort=False):
        table = rows_of_family.pivot(index="seed", columns="condition", values="value")
        metric = str(rows_of_family["metric"].iloc[0])
        orientation = 1.0 if bool(rows_of_family["higher_is_better"].iloc[0]) else -1.0
        for other in [c for c in CONDITIONS[1:] if c in table]:
            advantage = (orientation * (table["matched"] - table[other])).dropna()
            advantage = advantage[np.isfinite(advantage)]
            mean, low, high = t_interval(advantage.to_numpy(), level)
            n = len(advantage)
            if n < 2 or not np.isfinite(low):
                verdict = "too few seeds for an interval"
            elif low > 0:
                verdict = "matched region better"
            elif high < 0:
                verdict = f"{other.replace('_', '-')} region better"
            else:
                verdict = "no clear difference"
            rows.append(asdict(Advantage(family=str(family), comparison=f"matched - {other}", metric=metric,
                                         n_pairs=n, seeds=",".join(str(s) for s in advantage.index),
                                         mean=mean, ci_low=low, ci_high=high,
                                         sign_flip_p=sign_flip_p_value(advantage.to_numpy()), verdict=verdict)))
    return pd.DataFrame(rows, columns=list(Advantage.__dataclass_fields__))


def cross_region_markdown(success: pd.DataFrame, advantage: pd.DataFrame, conditions: Sequence[Mapping[str, Any]],
                          level: float, size_records: Mapping[str, Mapping[str, Any]]) -> str:
    """``summary.md`` of the cross-region experiment: the paired table first, then each condition."""
    lines = ["# Cross-region transfer", "",
             "Does each task family run better on the region it belongs to? Per seed, the connectome model's "
             "primary metric on the clean test split at the training length; the *matched advantage* is matched "
             "minus the other condition, signed so that a positive value favours the matched region. Intervals "
             f"are {level:.0%} Student-t intervals over seeds; p is the exact two-sided sign-flip permutation "
             "p-value (with n seeds it cannot fall below 2/2^n).", "",
             "## Matched advantage, paired over seeds", "",
             "| family | comparison | metric | seeds | matched advantage [interval] | sign-flip p | verdict |",
             "|---|---|---|---:|---|---:|---|"]
    for row in advantage.itertuples():
        interval = (f"{row.mean:+.4g} [{row.ci_low:+.4g}, {row.ci_high:+.4g}]" if np.isfinite(row.ci_low)
                    else f"{row.mean:+.4g}")
        lines.append(f"| {row.family} | {row.comparison} | `{row.metric}` | {row.n_pairs} | {interval} | "
                     f"{row.sign_flip_p:.3g} | {row.verdict} |")
    lines += ["", "## Conditions", "", "| family | condition | experiment | substrate | task | model | mean [interval] |",
              "|---|---|---|---|---|---|---|"]
    for info in conditions:
        values = success.loc[(success["family"] == info["family"]) & (success["condition"] == info["condition"]),
                             "value"].to_numpy()
        mean, low, high = t_interval(values, level)
        cell = f"{mean:.4g} [{low:.4g}, {high:.4g}]" if np.isfinite(low) else f"{mean:.4g}"
        lines.append(f"| {info['family']} | {info['condition']} | `{info['experiment']}` | `{info['substrate']}` | "
                     f"`{info['task']}` | `{info['model']}` | {cell} |")
    if size_records:
        lines += ["", "## Size matching", ""]
        for substrate, record in size_records.items():
            lines.append(f"- `{substrate}`: {record['source_neurons']} neurons / {record['source_edges']} edges -> "
                         f"{record['target_neurons']} / {record['target_edges']} ({record['copies']} cop"
                         f"{'y' if record['copies'] == 1 else 'ies'} tiled; {record['induced_edges']} induced edges, "
                         f"{record['edges_dropped']} weakest dropped, {record['edges_added']} random edges added).")
    lines += ["", "## Caveats", "",
              "- Regions differ in more than size (pools, K, degree structure); the size-matched condition removes "
              "N and edge count only, and its added edges (if any, above) are random structure.",
              "- The conditions run the same task, splits, seeds and training; only the substrate differs."]
    return "\n".join(lines) + "\n"
