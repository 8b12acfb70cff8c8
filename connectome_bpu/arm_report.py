"""What the learning-rule arms of one experiment show: per-seed learning measures, paired comparisons, a summary.

Three questions, each answered paired over seeds with an interval (docs/learning_rule_arms.md#reading-the-report):

* **How much of BPTT's result does an arm keep?** With the ``readout`` arm in the run (the input adapter never
  learns), ``input credit benefit`` = readout - bptt says what crediting ``W_in`` buys on the task at all, and
  ``input credit share`` = (readout - arm) / (readout - bptt) per seed says how much of that an arm recovers
  (1 = all of it, 0 = none). ``retained gain`` = (trivial baseline - arm) / (trivial baseline - bptt) is the
  coarser share of BPTT's advantage over predicting the mean; for ``ccdni`` beside ``tbptt`` also ``gap closed`` =
  (tbptt - ccdni) / (tbptt - bptt), the share of the truncation gap the synthesiser closes. The paired difference
  arm - bptt is reported beside them.
* **Does the connectome help under this rule?** connectome+arm - control+arm per seed (the topology comparison
  within the rule), and the interaction (connectome+arm - control+arm) - (connectome - control): whether the
  connectome helps this arm more than it helps BPTT.
* **How fast and how faithfully does it learn?** Area under the validation-loss curve, epochs until the validation
  loss is within ``threshold_margin`` of BPTT's best on the same core and seed, and the per-epoch gradient
  fidelity recorded by the training jobs (cosine with the BPTT gradient, feedback angle, adjoint cosine).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .arms import DIAGNOSTIC_COLUMNS
from .metrics import PRIMARY_METRIC, metric_direction
from .model_names import MEAN_PREDICTOR, READOUT, arm_model_name, base_model
from .results import interval_verdict, seed_list, t_interval

ARM_METRIC_COLUMNS = ["arm", "model", "core", "seed", "primary_metric", "value", "best_val_loss", "auc_val_loss",
                      "epochs_to_threshold", "threshold", *(f"final_{c}" for c in DIAGNOSTIC_COLUMNS)]
COMPARISON_COLUMNS = ["question", "arm", "core", "reference", "metric", "n_seeds", "mean", "ci_low", "ci_high",
                      "verdict", "seeds_used"]


def _evaluation(by_seed: pd.DataFrame, metric: str, split: str, T: int, n_train: int) -> pd.DataFrame:
    noise = by_seed["noise_std"] if "noise_std" in by_seed else pd.Series(np.nan, index=by_seed.index)
    rows = by_seed[(by_seed["split"] == split) & (by_seed["T"] == T) & (by_seed["n_train"] == n_train)
                   & (noise.isna() | (noise == 0))]
    return rows.pivot_table(index="seed", columns="model", values=metric, aggfunc="first")


def _auc(curve: pd.DataFrame, epochs: int) -> float:
    """Mean validation loss over ``epochs`` epochs; a run that stopped early keeps its last value (it would not
    have improved: that is why it stopped), so runs of different lengths compare on the same span."""
    values = curve.sort_values("epoch")["val_loss"].to_numpy(float)
    if len(values) == 0:
        return np.nan
    padded = np.concatenate([values, np.full(max(epochs - len(values), 0), values[-1])])
    return float(padded[:epochs].mean())


def _epochs_to(curve: pd.DataFrame, threshold: float) -> float:
    reached = curve[curve["val_loss"] <= threshold]["epoch"]
    return float(reached.min()) if len(reached) else np.nan


def arm_metrics(by_seed: pd.DataFrame, history: pd.DataFrame, *, task: str, cores: Sequence[str],
                arms: Sequence[str], split: str, T: int, n_train: int, epochs: int,
                threshold_margin: float) -> pd.DataFrame:
    """One row per (arm including bptt, core model, seed) with the learning measures of the module docstring."""
    metric = PRIMARY_METRIC[task]
    table = _evaluation(by_seed, metric, split, T, n_train)
    history = history[history["n_train"] == n_train]
    rows = []
    for core in cores:
        bptt_curves = history[history["model"] == core]
        for arm in ("bptt", *arms):
            model = arm_model_name(core, arm)
            for seed, curve in history[history["model"] == model].groupby("seed"):
                reference = bptt_curves[bptt_curves["seed"] == seed]["val_loss"]
                threshold = float(reference.min()) * (1 + threshold_margin) if len(reference) else np.nan
                last = curve.sort_values("epoch").iloc[-1]
                rows.append({"arm": arm, "model": model, "core": core, "seed": int(seed), "primary_metric": metric,
                             "value": table.at[seed, model] if model in table and seed in table.index else np.nan,
                             "best_val_loss": float(curve["val_loss"].min()), "auc_val_loss": _auc(curve, epochs),
                             "epochs_to_threshold": _epochs_to(curve, threshold), "threshold": threshold,
                             **{f"final_{c}": float(last[c]) if c in last else np.nan for c in DIAGNOSTIC_COLUMNS}})
    return pd.DataFrame(rows, columns=ARM_METRIC_COLUMNS)


def _row(question: str, arm: str, core: str, reference: str, metric: str, values: pd.Series, level: float,
         verdict_metric: str | None) -> dict:
    values = values.dropna()
    mean, low, high = t_interval(values.to_numpy(float), level)
    verdict = interval_verdict(verdict_metric, low, high, len(values)) if verdict_metric else ""
    return {"question": question, "arm": arm, "core": core, "reference": reference, "metric": metric,
            "n_seeds": len(values), "mean": mean, "ci_low": low, "ci_high": high, "verdict": verdict,
            "seeds_used": seed_list(values.index)}


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """Per-seed ratio; a seed whose denominator is (almost) zero has no defined share and is left out."""
    usable = denominator.abs() > 1e-12
    return (numerator[usable] / denominator[usable]).astype(float)


def arm_comparisons(by_seed: pd.DataFrame, *, task: str, primary: str, cores: Sequence[str], arms: Sequence[str],
                    split: str, T: int, n_train: int, level: float) -> pd.DataFrame:
    """The paired answers to the module docstring's first two questions, one row each."""
    metric = PRIMARY_METRIC[task]
    table = _evaluation(by_seed, metric, split, T, n_train)
    sign = 1.0 if metric_direction(metric) == "lower" else -1.0   # sign * (a - b) > 0: a is worse than b

    def col(model: str) -> pd.Series:
        return table[model] if model in table else pd.Series(np.nan, index=table.index)

    rows = []
    if READOUT in arms:
        for core in cores:
            floor = col(arm_model_name(core, READOUT))
            rows.append(_row("input credit benefit", READOUT, core, core, metric, floor - col(core), level, None))
    for arm in arms:
        for core in cores:
            model = arm_model_name(core, arm)
            rows.append(_row("arm minus bptt", arm, core, core, metric, col(model) - col(core), level, None))
            if READOUT in arms and arm != READOUT:
                floor = col(arm_model_name(core, READOUT))
                rows.append(_row("input credit share", arm, core, arm_model_name(core, READOUT), metric,
                                 _ratio(sign * (floor - col(model)), sign * (floor - col(core))), level, None))
            if MEAN_PREDICTOR in table:
                rows.append(_row("retained gain", arm, core, MEAN_PREDICTOR, metric,
                                 _ratio(sign * (col(MEAN_PREDICTOR) - col(model)),
                                        sign * (col(MEAN_PREDICTOR) - col(core))), level, None))
            if arm == "ccdni" and arm_model_name(core, "tbptt") in table:
                truncated = col(arm_model_name(core, "tbptt"))
                rows.append(_row("gap closed", arm, core, arm_model_name(core, "tbptt"), metric,
                                 _ratio(sign * (truncated - col(model)), sign * (truncated - col(core))), level, None))
        for core in cores:
            if core == primary:
                continue
            within = col(arm_model_name(primary, arm)) - col(arm_model_name(core, arm))
            rows.append(_row("connectome minus control", arm, core, arm_model_name(core, arm), metric, within, level,
                             metric))
            interaction = within - (col(primary) - col(core))
            rows.append(_row("interaction with bptt", arm, core, core, metric, interaction, level, metric))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _fmt(row: pd.Series, percent: bool = False) -> str:
    if not np.isfinite(row["mean"]):
        return "n/a"
    scale, unit = (100.0, " %") if percent else (1.0, "")
    if not (np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"])):
        return f"{scale * row['mean']:.3g}{unit} (no interval: {int(row['n_seeds'])} seed)"
    return f"{scale * row['mean']:.3g}{unit} [{scale * row['ci_low']:.3g}, {scale * row['ci_high']:.3g}]"


def _pick(comparisons: pd.DataFrame, question: str, arm: str, core: str) -> pd.Series | None:
    found = comparisons[(comparisons["question"] == question) & (comparisons["arm"] == arm)
                        & (comparisons["core"] == core)]
    return found.iloc[0] if len(found) else None


def summary_markdown(metrics: pd.DataFrame, comparisons: pd.DataFrame, *, experiment: str, primary: str,
                     cores: Sequence[str], arms: Sequence[str], seeds: Sequence[int], level: float) -> str:
    """The report's plain answers: which arms keep how much of BPTT, and whether the connectome helps any arm."""
    metric = metrics["primary_metric"].iloc[0] if len(metrics) else "primary metric"
    lines = [f"# Learning-rule arms: `{experiment}`", "",
             f"Every arm trains the same BPU adapters on the same cores, splits and seeds {list(seeds)}; only the "
             f"credit given to `W_in`/`b_in` differs (`W_out` always learns by its exact gradient). Primary metric: "
             f"`{metric}` on the clean test split at the training length; intervals are {level:.0%} Student-t "
             "intervals of paired per-seed values.", "",
             "## How much of BPTT each arm keeps", "", *_benefit_lines(comparisons, cores),
             "| arm | core | arm - bptt | share of the input-credit benefit | retained gain over `mean_predictor` | "
             "gap to tbptt closed |", "|---|---|---|---|---|---|"]
    for arm in arms:
        for core in cores:
            cells = []
            for question, percent in (("arm minus bptt", False), ("input credit share", True),
                                      ("retained gain", True), ("gap closed", True)):
                row = _pick(comparisons, question, arm, core)
                cells.append(_fmt(row, percent) if row is not None else "")
            lines.append(f"| {arm} | {core} | " + " | ".join(cells) + " |")
    lines += ["", "## Does the connectome help any arm more than its controls?", "",
              "| arm | control | connectome - control under the arm | verdict | change from bptt (interaction) | "
              "verdict |", "|---|---|---|---|---|---|"]
    for arm in arms:
        for core in cores:
            within, interaction = (_pick(comparisons, q, arm, core) for q in ("connectome minus control",
                                                                               "interaction with bptt"))
            if within is None:
                continue
            lines.append(f"| {arm} | {core} | {_fmt(within)} | {within['verdict']} | {_fmt(interaction)} | "
                         f"{interaction['verdict']} |")
    lines += ["", "## Learning speed and gradient fidelity (mean over seeds)", "",
              "| arm | core | area under val-loss curve | epochs to threshold (seeds reaching it) | cosine with "
              "BPTT gradient | feedback angle (deg) | adjoint cosine |", "|---|---|---:|---:|---:|---:|---:|"]
    for (arm, core), group in metrics.groupby(["arm", "core"], sort=False):
        reached = group["epochs_to_threshold"].dropna()
        cells = [f"{group['auc_val_loss'].mean():.4g}",
                 f"{reached.mean():.3g} ({len(reached)} of {len(group)})" if len(reached) else f"none of {len(group)}"]
        cells += [f"{group[f'final_{c}'].mean():.3g}" if group[f"final_{c}"].notna().any() else "" for c in
                  DIAGNOSTIC_COLUMNS]
        lines.append(f"| {arm} | {core} | " + " | ".join(cells) + " |")
    lines += ["", _plain_answer(comparisons, primary, cores, arms), ""]
    return "\n".join(lines)


def _benefit_lines(comparisons: pd.DataFrame, cores: Sequence[str]) -> list[str]:
    """What learning the input adapter buys at all (readout floor minus bptt); without it no share is meaningful."""
    lines = []
    for core in cores:
        row = _pick(comparisons, "input credit benefit", READOUT, core)
        if row is None:
            continue
        excludes = np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]) and (row["ci_low"] > 0 or
                                                                                    row["ci_high"] < 0)
        meaning = ("learning W_in changes the result, so the arms can be told apart by how much of it they recover"
                   if excludes else "no detectable effect of learning W_in at all, so the arms' shares of it are "
                   "noise and the arms cannot be told apart on this task")
        lines.append(f"- `{core}`: readout-only minus bptt {_fmt(row)}: {meaning}.")
    return lines + [""] if lines else []


def _plain_answer(comparisons: pd.DataFrame, primary: str, cores: Sequence[str], arms: Sequence[str]) -> str:
    """One paragraph a reader can quote: ranked retained gain on the connectome, and any arm where it helps more."""
    share = "input credit share" if READOUT in arms else "retained gain"
    gains = []
    for arm in arms:
        row = _pick(comparisons, share, arm, primary)
        if row is not None and np.isfinite(row["mean"]):
            gains.append((row["mean"], arm, row))
    ranked = ", ".join(f"`{arm}` {_fmt(row, True)}" for _, arm, row in sorted(gains, reverse=True))
    helped = [f"`{arm}` (vs `{core}`)" for arm in arms for core in cores if core != primary
              and (r := _pick(comparisons, "interaction with bptt", arm, core)) is not None
              and r["verdict"] == "connectome better"]
    what = "the input-credit benefit (readout floor to BPTT)" if READOUT in arms else "BPTT's gain over the mean"
    text = f"**In short.** On `{primary}`, the share of {what} each arm recovers: {ranked or 'not computable'}. "
    text += ("The connectome's advantage over a control grows under " + ", ".join(helped) + "."
             if helped else "No arm shows a connectome advantage over a control that is larger than under BPTT "
             "(no interaction interval excludes zero in the connectome's favour).")
    return text


def cores_of(models: Sequence[str]) -> list[str]:
    """The plain BPU core models that arms were applied to, in run order."""
    return list(dict.fromkeys(base_model(m) for m in models if base_model(m) != m))
