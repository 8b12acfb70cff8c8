"""Rules of ``rules/learning_rules.smk``: the learning-rule report of an experiment, and the seed-system checks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic
from .. import figures as fig
from ..arm_report import arm_comparisons, arm_metrics, cores_of, summary_markdown
from ..atomic import read_json
from ..seed_check_report import seed_check_summary
from ..seed_checks import run_seed_check_seed

LOG = logging.getLogger(__name__)


def learning_rules_report(smk: Any) -> None:
    """Per-seed learning measures of every arm, the paired comparisons, the figures and ``summary.md``."""
    settings = dict(smk.params.report)
    by_seed, history = pd.read_csv(smk.input.by_seed), pd.read_csv(smk.input.history)
    cores, arms = cores_of(settings["models"]), list(settings["arms"])
    where = {"split": settings["split"], "T": settings["T"], "n_train": settings["n_train"]}
    metrics = arm_metrics(by_seed, history, task=settings["task"], cores=cores, arms=arms, epochs=settings["epochs"],
                          threshold_margin=settings["threshold_margin"], **where)
    comparisons = arm_comparisons(by_seed, task=settings["task"], primary=settings["primary"], cores=cores,
                                  arms=arms, level=settings["level"], **where)
    atomic.write_csv(smk.output.metrics, metrics)
    atomic.write_csv(smk.output.comparisons, comparisons)
    atomic.write_text(smk.output.summary, summary_markdown(
        metrics, comparisons, experiment=smk.params.experiment, primary=settings["primary"], cores=cores, arms=arms,
        seeds=settings["seeds"], level=settings["level"]))
    options = fig.FigureOptions.from_config(smk.params.options)
    synthetic = bool(read_json(smk.input.metadata).get("synthetic"))
    full = history[history["n_train"] == settings["n_train"]]
    fig.arm_learning_curves(full, cores=cores, arms=arms, options=options, synthetic=synthetic,
                            path=Path(smk.output.curves))
    fig.gradient_fidelity(full, core=settings["primary"], arms=arms, options=options, synthetic=synthetic,
                          path=Path(smk.output.fidelity))
    LOG.info("learning-rule report: %d arms x %d cores, %d comparison rows", len(arms), len(cores), len(comparisons))


def seed_check_seed(smk: Any) -> None:
    """Every arm of one seed-system check (the ``check`` wildcard) on one seed (the ``seed`` wildcard)."""
    outputs = {"by_seed": Path(smk.output.by_seed), "curves": Path(smk.output.curves)}
    tables = run_seed_check_seed(smk.wildcards.check, preset=smk.params.preset, seed=int(smk.wildcards.seed),
                                 outputs=outputs)
    LOG.info("seed check %s, seed %s: %d arm rows", smk.wildcards.check, smk.wildcards.seed, len(tables["by_seed"]))


def seed_check(smk: Any) -> None:
    """One seed-system check (the ``check`` wildcard) over its seeds: joined tables, figure and ``summary.md``."""
    outputs = {"by_seed": Path(smk.output.by_seed), "curves": Path(smk.output.curves),
               "summary": Path(smk.output.summary), "figure": Path(smk.output.figure)}
    seed_check_summary(smk.wildcards.check, preset=smk.params.preset, seeds=list(smk.params.seeds),
                       by_seed=[Path(p) for p in smk.input.by_seed], curves=[Path(p) for p in smk.input.curves],
                       outputs=outputs)
