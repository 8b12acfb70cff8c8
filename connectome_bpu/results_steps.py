"""Rule functions of the plotting family: aggregation, figures, summary (no torch needed)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from . import atomic
from . import figures as fig
from .provenance import build_manifest
from .reports.summary import summary_markdown
from .results import concat_job_tables, paired_differences, summarise

LOG = logging.getLogger(__name__)


def results_step(smk: Any) -> None:
    {"aggregate": aggregate_step, "figure": figure_step, "summary": summary_step,
     "manifest": manifest_step}[smk.rule](smk)


def aggregate_step(smk: Any) -> None:
    models, task, level = list(smk.params.models), smk.params.task, smk.params.interval
    by_seed = concat_job_tables(smk.input.metrics, models)
    history = concat_job_tables(smk.input.histories, models)
    se_rows = concat_job_tables(list(smk.input.se_metrics), models)
    se_full = by_seed[by_seed["model"].isin(smk.params.se_models)]
    sample_eff = pd.concat([se_rows, se_full], ignore_index=True) if not se_rows.empty else se_full
    others = [m for m in models if m != smk.params.primary]
    atomic.write_csv(smk.output.by_seed, by_seed)
    atomic.write_csv(smk.output.summary, summarise(by_seed, task, level))
    atomic.write_csv(smk.output.history, history)
    atomic.write_csv(smk.output.paired, paired_differences(by_seed, smk.params.primary, others, task, level))
    atomic.write_csv(smk.output.sample_efficiency, sample_eff)
    LOG.info("aggregated %d metric rows over %d models and %d seeds", len(by_seed), by_seed["model"].nunique(),
             by_seed["seed"].nunique())


def figure_step(smk: Any) -> None:
    options = fig.FigureOptions.from_config(smk.params.options)
    with open(smk.input.metadata, encoding="utf-8") as handle:
        synthetic = bool(json.load(handle).get("synthetic"))
    name, task, models, out = smk.wildcards.figure, smk.params.task, list(smk.params.models), Path(smk.output[0])
    common = {"options": options, "synthetic": synthetic, "path": out}
    if name == "loss_curve":
        fig.loss_curve(pd.read_csv(smk.input.history), models=models, **common)
        return
    if name == "sample_efficiency":
        rows = summarise(pd.read_csv(smk.input.sample_efficiency), task, options.interval)
        fig.sample_efficiency(rows, task=task, T=smk.params.train_T, models=list(smk.params.se_models), **common)
        return
    summary = summarise(pd.read_csv(smk.input.by_seed), task, options.interval)
    if name == "error_vs_sequence_length":
        fig.error_vs(summary, task=task, split="test", x="T", xlabel="Sequence length T (steps)",
                     title="Path-integration error vs sequence length", models=models, **common)
    else:
        fig.error_vs(summary, task=task, split="test_noise", x="noise_std",
                     xlabel="Input noise standard deviation (input units)",
                     title="Noise robustness", models=models, **common)


def summary_step(smk: Any) -> None:
    with open(smk.input.metadata, encoding="utf-8") as handle:
        metadata = json.load(handle)
    text = summary_markdown(metadata=metadata, substrate=smk.wildcards.substrate, task=smk.params.task,
                            mode=smk.params.mode, seeds=list(smk.params.seeds), n_train=smk.params.n_train,
                            train_T=smk.params.train_T, models=list(smk.params.models), primary=smk.params.primary,
                            summary=pd.read_csv(smk.input.summary), paired=pd.read_csv(smk.input.paired),
                            level=smk.params.interval)
    atomic.write_text(smk.output[0], text)


def manifest_step(smk: Any) -> None:
    manifest = build_manifest(list(smk.input), config=dict(smk.params.config), repo_dir=smk.params.repo)
    atomic.write_json(smk.output[0], manifest)
    LOG.info("manifest of %d files written to %s", len(manifest["files"]), smk.output[0])
