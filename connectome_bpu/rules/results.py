"""Rules of ``rules/results.smk``: an experiment's aggregated tables, figures, summary and manifest.

Each rule imports what only it needs inside its function (matplotlib for figures, scipy.stats for the sweep
statistics): these jobs are short, and their imports are most of what they cost.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import atomic
from ..atomic import read_json

LOG = logging.getLogger(__name__)


def aggregate(smk: Any) -> None:
    """Stack the per-job metric and history files; summarise over seeds; pair the connectome with each model
    (within each learning-rule arm: ``model_names.comparison_sets``)."""
    import pandas as pd

    from ..model_names import comparison_sets
    from ..results import concat_job_tables, paired_differences, summarise

    models, task, level = list(smk.params.models), smk.params.task, smk.params.interval
    by_seed = concat_job_tables(smk.input.metrics, models)
    history = concat_job_tables(smk.input.histories, models)
    se_rows = concat_job_tables(list(smk.input.se_metrics), models)
    se_full = by_seed[by_seed["model"].isin(smk.params.se_models)]
    sample_eff = pd.concat([se_rows, se_full], ignore_index=True) if not se_rows.empty else se_full
    paired = [paired_differences(by_seed, primary, others, task, level, seeds=list(smk.params.seeds))
              for primary, others in comparison_sets(models, smk.params.primary)]
    atomic.write_csv(smk.output.by_seed, by_seed)
    atomic.write_csv(smk.output.summary, summarise(by_seed, task, level))
    atomic.write_csv(smk.output.history, history)
    atomic.write_csv(smk.output.paired, pd.concat(paired, ignore_index=True))
    atomic.write_csv(smk.output.sample_efficiency, sample_eff)
    LOG.info("aggregated %d metric rows over %d models and %d seeds", len(by_seed), by_seed["model"].nunique(),
             by_seed["seed"].nunique())


def figure(smk: Any) -> None:
    """One figure (named by the ``figure`` wildcard), seeds aggregated into interval bars or bands."""
    import numpy as np
    import pandas as pd

    from .. import figures as fig
    from ..metrics import PRIMARY_METRIC
    from ..results import summarise
    from ..tasks import split_plan

    options = fig.FigureOptions.from_config(smk.params.options)
    synthetic = bool(read_json(smk.input.metadata).get("synthetic"))
    name, task, models = smk.wildcards.figure, smk.params.task, list(smk.params.models)
    common = {"options": options, "synthetic": synthetic, "path": Path(smk.output[0])}
    if name == "loss_curve":
        fig.loss_curve(pd.read_csv(smk.input.history), models=models, **common)
    elif name == "sample_efficiency":
        rows = summarise(pd.read_csv(smk.input.sample_efficiency), task, options.interval)
        fig.sample_efficiency(rows, task=task, T=smk.params.train_T, models=list(smk.params.se_models), **common)
    elif name == "accuracy_by_phase":
        fig.accuracy_by_phase(pd.read_csv(smk.input.by_seed), models=models, **common)
    elif name == "velocity_traces":
        examples = {}
        for model, path in zip(smk.params.example_models, smk.input.examples):
            with np.load(path) as stored:
                examples[model] = {key: stored[key] for key in stored.files}
        in_distribution = next(split.name for split in split_plan(smk.params.task_cfg) if split.label == "test")
        fig.velocity_traces(examples, split=in_distribution, seed=int(smk.params.seeds[0]), models=models, **common)
    elif name == "error_by_preset":
        presets = [(split.label, split.preset) for split in split_plan(smk.params.task_cfg) if split.role == "test"]
        fig.error_by_preset(pd.read_csv(smk.input.by_seed), presets=presets, metric=PRIMARY_METRIC[task],
                            ylabel="Test RMSE over yaw, forward and lateral speed (per frame)", models=models,
                            **common)
    elif name == "error_vs_sequence_length":
        summary_rows = summarise(pd.read_csv(smk.input.by_seed), task, options.interval)
        fig.error_vs(summary_rows, task=task, split="test", x="T", xlabel="Sequence length T (steps)",
                     title="Path-integration error vs sequence length", models=models, **common)
    else:
        summary_rows = summarise(pd.read_csv(smk.input.by_seed), task, options.interval)
        fig.error_vs(summary_rows, task=task, split="test_noise", x="noise_std",
                     xlabel="Input noise standard deviation (input units)",
                     title="Noise robustness", models=models, **common)


def summary(smk: Any) -> None:
    """``summary.md``: the experiment's question, its models beside the baselines, and the paired verdicts."""
    import pandas as pd

    from ..reports.summary import summary_markdown

    text = summary_markdown(metadata=read_json(smk.input.metadata), substrate=smk.params.substrate,
                            task=smk.params.task, mode=smk.params.mode, plasticity=smk.params.plasticity,
                            seeds=list(smk.params.seeds),
                            n_train=smk.params.n_train, train_T=smk.params.train_T, models=list(smk.params.models),
                            primary=smk.params.primary, summary=pd.read_csv(smk.input.summary),
                            paired=pd.read_csv(smk.input.paired), level=smk.params.interval)
    atomic.write_text(smk.output[0], text)


def sweep_statistics(smk: Any) -> None:
    """Leaderboard, paired and matched-topology comparisons (t, sign-flip and Wilcoxon, Holm) and sweep_report.md."""
    import pandas as pd

    from .. import sweep_statistics as sweep

    result = sweep.sweep_statistics(pd.read_csv(smk.input.by_seed), experiment=smk.wildcards.experiment,
                                    task=smk.params.task, primary=smk.params.primary, models=list(smk.params.models),
                                    split=smk.params.split, T=smk.params.train_T, n_train=smk.params.n_train,
                                    level=smk.params.interval)
    atomic.write_csv(smk.output.leaderboard, result["leaderboard"])
    atomic.write_csv(smk.output.paired, result["paired_comparisons"])
    atomic.write_csv(smk.output.matched, result["matched_topology_comparisons"])
    atomic.write_text(smk.output.report, result["markdown"])


def manifest(smk: Any) -> None:
    """``run_manifest.json``: git commit, resolved config, package versions and sha256 of every artifact."""
    from ..provenance import build_manifest

    record = build_manifest(list(smk.input), config=dict(smk.params.config))
    atomic.write_json(smk.output[0], record)
    LOG.info("manifest of %d files written to %s", len(record["files"]), smk.output[0])
