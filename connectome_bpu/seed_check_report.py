"""Verdicts of the seed-system checks: each learning rule reproduces its own system's result on its own task first.

A rule is trusted on a connectome only once it shows, on the small task its authors used, the effect they
reported (docs/learning_rule_arms.md#seed-system-checks):

* ``yin_yang`` (feedback alignment and PAL, 4-30-3 network): PAL beats FA and comes close to backprop, the
  linear network sits near 64 %, and PAL's feedback turns towards the forward weights' transpose while FA's does not;
* ``line_drawing`` (truncated BPTT and the cerebellar synthesiser, LSTM with sparse feedback): with a window of
  one step the synthesiser learns faster than truncation alone, closing part of its gap to full BPTT;
* ``gle_lag`` (GLE, teacher-student chain with lags): prospective errors recover the teacher's weights and time
  constants better than instantaneous errors;
* ``gle_teacher`` (GLE on a frozen connectome-like core, teacher-student): the online rule moves the input
  weights most of the way to the teacher's hidden ones, beside BPTT on the same data;
* ``mnist1d`` (GLE, sequence classification on procedurally generated MNIST-1D): GLE beats instantaneous errors on
  the same network, and its accuracy lies in the published band; full BPTT through the same network is run
  beside them as that network's ceiling.

Every PASS/FAIL line of a check's ``summary.md`` is computed from its per-seed table by a criterion that can fail
(a paired difference whose interval must exclude zero, or a value that must lie in a band).

How each check is run, one seed per job, is :mod:`connectome_bpu.seed_checks`; the verdicts live here, apart, so
that editing a criterion or a table redoes only the cheap gathering step and never the seeds' training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import atomic
from .results import t_interval
from .seed_checks import check_settings, load_check_module

LEVEL = 0.95


@dataclass(frozen=True)
class Criterion:
    """One claim of a check: its sentence, the measured value as text, and whether it held."""

    claim: str
    measured: str
    passed: bool


@dataclass(frozen=True)
class Verdicts:
    """How one check's per-seed table is judged and shown."""

    title: str
    plot: str                         # function of the check's module that draws its figure
    metrics: tuple[str, ...]          # per-seed columns summarised per arm
    criteria: Callable[[pd.DataFrame], list[Criterion]]
    published: str


def _arm(by_seed: pd.DataFrame, arm: str, column: str) -> pd.Series:
    return by_seed[by_seed["arm"] == arm].set_index("seed")[column].astype(float)


def _paired(by_seed: pd.DataFrame, better: str, worse: str, column: str, higher_is_better: bool,
            what: str) -> Criterion:
    """``better`` beats ``worse`` on ``column``: the paired interval of the difference excludes zero."""
    diff = (_arm(by_seed, better, column) - _arm(by_seed, worse, column)).dropna()
    if not higher_is_better:
        diff = -diff
    mean, low, high = t_interval(diff.to_numpy(), LEVEL)
    passed = bool(len(diff) >= 2 and np.isfinite(low) and low > 0)
    return Criterion(f"{better} beats {worse} on {what} (paired over {len(diff)} seeds, {LEVEL:.0%} interval above 0)",
                     f"advantage {mean:.4g} [{low:.4g}, {high:.4g}]", passed)


def _within(by_seed: pd.DataFrame, arm: str, column: str, low: float, high: float, what: str) -> Criterion:
    values = _arm(by_seed, arm, column).dropna()
    mean = float(values.mean()) if len(values) else float("nan")
    return Criterion(f"{arm} {what} lies in [{low:g}, {high:g}]", f"{mean:.4g} (mean of {len(values)} seeds)",
                     bool(len(values) and low <= mean <= high))


def _yin_yang_criteria(by_seed: pd.DataFrame) -> list[Criterion]:
    return [_paired(by_seed, "pal", "fa", "test_accuracy", True, "test accuracy"),
            _paired(by_seed, "pal", "noise_only", "test_accuracy", True, "test accuracy (noise alone does not help)"),
            _paired(by_seed, "bp", "shallow", "test_accuracy", True, "test accuracy"),
            # A linear readout fitted to convergence on 200,000 points of this generator scores 0.660 (0.679 on
            # the test split); the published 0.643 is another draw. The band asks "near the linear limit".
            _within(by_seed, "shallow", "test_accuracy", 0.60, 0.70, "test accuracy (published 0.643)"),
            _paired(by_seed, "pal", "fa", "final_angle_deg", False, "feedback angle to W2^T (smaller)")]


def _line_drawing_criteria(by_seed: pd.DataFrame) -> list[Criterion]:
    # The published claim is that the synthesiser learns faster than truncation alone and ends at a lower error.
    # Speed is the area under the validation curve on the log scale (``log_auc``, the mean log10 validation MSE
    # over epochs), chosen on validation seeds, never on the check's own: the linear area is mostly the initial
    # plateau, which every arm leaves within a few epochs of the others. The end is the test MSE at the last
    # epoch (on validation seeds 100-107 the synthesiser's was below truncation's on 8 of 8).
    return [_paired(by_seed, "ccdni", "tbptt", "log_auc", False, "log-scale area under the validation curve"),
            _paired(by_seed, "ccdni", "tbptt", "test_mse", False, "test MSE at the last epoch"),
            _paired(by_seed, "bptt", "tbptt", "log_auc", False,
                    "log-scale area under the validation curve (truncation costs something)")]


def _gle_lag_criteria(by_seed: pd.DataFrame) -> list[Criterion]:
    return [_paired(by_seed, "gle", "bp", "weight_error", False, "distance to the teacher's weights"),
            _paired(by_seed, "gle", "bp", "output_mse", False, "output MSE")]


def _gle_teacher_criteria(by_seed: pd.DataFrame) -> list[Criterion]:
    gle = by_seed[by_seed["arm"] == "gle"].set_index("seed")
    learnt = _within(by_seed, "gle", "weight_error", 0.0, 0.5,
                     "distance to the hidden input weights, relative to the start (recovered more than half way)")
    improvement = (gle["initial_output_mse"] - gle["output_mse"]).astype(float)
    mean, low, high = t_interval(improvement.to_numpy(), LEVEL)
    fits = Criterion(f"gle lowers the output error to the teacher (paired over {len(improvement)} seeds, {LEVEL:.0%} "
                     "interval above 0)", f"{mean:.4g} [{low:.4g}, {high:.4g}]", bool(np.isfinite(low) and low > 0))
    return [learnt, fits]


def _mnist1d_criteria(by_seed: pd.DataFrame) -> list[Criterion]:
    # The default preset is the published protocol (14,956 parameters, 150 epochs); the fast preset is held to
    # the same band, so its FAIL says plainly that a tiny run does not reproduce the published figure.
    return [_paired(by_seed, "gle", "bp", "test_accuracy", True, "test accuracy"),
            _within(by_seed, "gle", "test_accuracy", 0.909, 0.925,
                    "test accuracy (published 91.7 +/- 0.8 % with 14,956 parameters)")]


VERDICTS: dict[str, Verdicts] = {
    "yin_yang": Verdicts(
        "Feedback alignment and PAL on Yin-Yang (4-30-3)", "plot_yin_yang_check", ("test_accuracy", "val_accuracy_best", "final_angle_deg"), _yin_yang_criteria,
        "Yin-Yang dataset reference runs: a 4-120-3 network trained by backprop 98.7 +/- 0.3 % test accuracy, a "
        "shallow (linear) network 64.3 +/- 0.2 %. The PAL paper's FA-vs-PAL accuracies were not available to us; "
        "its claim is that PAL beats random feedback and aligns its feedback with the forward transpose."),
    "line_drawing": Verdicts(
        "Truncated BPTT and the cerebellar synthesiser on line drawing", "plot_line_drawing_check",
        ("test_mse", "val_mse_best", "auc", "log_auc", "adjoint_cosine"),
        _line_drawing_criteria,
        "Published claim (cortico-cerebellar networks as decoupling neural interfaces): with a short truncation "
        "window the synthesiser (ccRNN) learns faster and reaches a lower error than the truncated cortex alone "
        "(cRNN); exact figures were not available to us."),
    "gle_lag": Verdicts(
        "GLE on a teacher-student lag chain", "plot_lag_check", ("output_mse", "weight_error", "tau_error"), _gle_lag_criteria,
        "Published setup: teacher weights (1, 2) and membrane time constants (1, 2); GLE recovers them where "
        "instantaneous errors do not (the stored result files were not available to recompute the curves)."),
    "gle_teacher": Verdicts(
        "GLE teacher-student on a frozen connectome-like core", "plot_teacher_check",
        ("weight_error", "output_mse", "initial_output_mse"),
        _gle_teacher_criteria,
        "No published figure: this transplants the lag teacher-student idea onto a recurrent core (the teacher is "
        "the same frozen core with hidden input weights), where GLE's errors are an extrapolation of the layered "
        "rule; bptt on the same data is the exact reference."),
    "mnist1d": Verdicts(
        "GLE on MNIST-1D", "plot_mnist1d_check",
        ("test_accuracy", "val_accuracy_best", "parameter_count"),
        _mnist1d_criteria,
        "Published end-to-end GLE on MNIST-1D: 91.7 +/- 0.8 % test accuracy with about 15 k parameters (6 hidden "
        "layers x (17 LE + 36 LI units), 150 epochs, 10 seeds), 93.5 +/- 0.9 % with about 42 k; BPTT baselines "
        "GRU 90.3-94.0 %, MLP 65 %."),
}




def summary_table(by_seed: pd.DataFrame, metrics: tuple[str, ...]) -> list[str]:
    """Mean [95 % t interval] over seeds per arm and metric, as Markdown rows."""
    present = [m for m in metrics if m in by_seed]
    lines = ["| arm | seeds | " + " | ".join(present) + " |", "|---|---:|" + "---:|" * len(present)]
    for arm, group in by_seed.groupby("arm", sort=False):
        cells = []
        for metric in present:
            mean, low, high = t_interval(group[metric].to_numpy(float), LEVEL)
            cells.append(f"{mean:.4g} [{low:.4g}, {high:.4g}]" if np.isfinite(low) else f"{mean:.4g}")
        lines.append(f"| {arm} | {group['seed'].nunique()} | " + " | ".join(cells) + " |")
    return lines


def check_markdown(name: str, by_seed: pd.DataFrame, preset: str, seeds: list[int], settings: dict) -> str:
    check = VERDICTS[name]
    criteria = check.criteria(by_seed)
    lines = [f"# Seed-system check: {check.title}", "",
             f"Preset `{preset}`, seeds {seeds}; settings: `{settings}`.", "",
             "## Criteria (each computed from the per-seed table; a FAIL is reported, not hidden)", ""]
    lines += [f"- **{'PASS' if c.passed else 'FAIL'}**: {c.claim}: {c.measured}." for c in criteria]
    lines += ["", f"## Per arm (mean [{LEVEL:.0%} t interval] over seeds)", "", *summary_table(by_seed, check.metrics),
              "", "## Published figures, for comparison", "", check.published, ""]
    return "\n".join(lines)


def seed_check_summary(name: str, *, preset: str, seeds: list[int], by_seed: list[Path], curves: list[Path],
                       outputs: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """Gather the per-seed tables of check ``name``; write the joined tables, its figure and ``summary.md``."""
    verdicts = VERDICTS[name]
    tables = {"by_seed": pd.concat([pd.read_csv(path) for path in by_seed], ignore_index=True),
              "curves": pd.concat([pd.read_csv(path) for path in curves], ignore_index=True)}
    atomic.write_csv(outputs["by_seed"], tables["by_seed"])
    atomic.write_csv(outputs["curves"], tables["curves"])
    with atomic.atomic_path(outputs["figure"]) as tmp:
        getattr(load_check_module(name), verdicts.plot)(tables, Path(tmp))
    atomic.write_text(outputs["summary"], check_markdown(name, tables["by_seed"], preset, list(seeds),
                                                         check_settings(name, preset)))
    return tables
