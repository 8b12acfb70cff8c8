"""Rule functions of the torch family: task splits and training jobs (see steps.py for the pattern)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .job import JobRequest, run_job
from .tasks import TaskSpec, split_plan, write_split

LOG = logging.getLogger(__name__)


def training_step(smk: Any) -> None:
    {"task_split": split_step, "train_model": train_step}[smk.rule](smk)


def split_step(smk: Any) -> None:
    task = dict(smk.params.task)
    split = next(s for s in split_plan(task) if s.name == smk.params.split)
    write_split(smk.output[0], TaskSpec.from_config(task), split, data_seed=task["data_seed"])
    LOG.info("wrote %s: %d sequences of T=%d, noise %.2f", smk.output[0], split.count, split.T, split.noise_std)


def train_step(smk: Any) -> None:
    task = dict(smk.params.task)
    by_file = {s.filename: s.name for s in split_plan(task)}
    training = dict(smk.params.training)
    execution = smk.config["training"]
    training.update(device=execution["device"], threads=smk.threads)
    request = JobRequest(
        model=smk.wildcards.model, seed=int(smk.wildcards.seed), n_train=int(smk.wildcards.n_train),
        graph_dir=Path(smk.input.info).parent, pools_path=Path(smk.input.pools), k_path=Path(smk.input.k),
        control_path=Path(smk.input.control) if smk.input.control else None,
        split_paths={by_file[Path(p).name]: Path(p) for p in smk.input.splits},
        task_cfg=task, training_cfg=training, out_dir=Path(smk.output.metrics).parent)
    metrics = run_job(request)
    LOG.info("%s seed %s n_train %s: %d metric rows", request.model, request.seed, request.n_train, len(metrics))
