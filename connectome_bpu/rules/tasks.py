"""Rule of ``rules/tasks.smk``: one task split file, shared by every substrate, model and seed."""

from __future__ import annotations

import logging
from typing import Any

from ..tasks import split_plan, task_spec, write_split

LOG = logging.getLogger(__name__)


def task_split(smk: Any) -> None:
    """Generate one split from the data seed and its place in the split plan, and write it atomically."""
    task = dict(smk.params.task)
    split = next(s for s in split_plan(task) if s.name == smk.params.split)
    write_split(smk.output[0], task_spec(task), split, data_seed=task["data_seed"])
    LOG.info("wrote %s: %d sequences of T=%d, noise %.2f", smk.output[0], split.count, split.T, split.noise_std)
