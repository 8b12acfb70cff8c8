"""Rule of ``rules/train.smk``: one training job per (substrate, task, training, model, seed, train size)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..tasks import split_plan
from ..training_job import JobRequest, run_job

LOG = logging.getLogger(__name__)


def train_model(smk: Any) -> None:
    """Train (or, for the mean predictor, compute) one model and write its checkpoint, history and metrics.

    Device and thread count are execution settings, read from config rather than params, so switching
    them never invalidates finished results.
    """
    task = dict(smk.params.task)
    by_file = {s.filename: s.name for s in split_plan(task)}
    training = dict(smk.params.training)
    training.update(device=smk.config["training"]["device"], threads=smk.threads)
    request = JobRequest(
        model=smk.wildcards.model, seed=int(smk.wildcards.seed), n_train=int(smk.wildcards.n_train),
        graph_dir=Path(smk.input.info).parent, pools_path=Path(smk.input.pools), k_path=Path(smk.input.k),
        control_path=Path(smk.input.control) if smk.input.control else None,
        split_paths={by_file[Path(p).name]: Path(p) for p in smk.input.splits},
        task_cfg=task, training_cfg=training, out_dir=Path(smk.output.metrics).parent)
    metrics = run_job(request)
    LOG.info("%s seed %s n_train %s: %d metric rows", request.model, request.seed, request.n_train, len(metrics))
