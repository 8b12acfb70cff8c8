"""Rule of ``rules/cross_region.smk``: the paired cross-region transfer table, its figure and summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic
from .. import figures as fig
from ..atomic import read_json
from ..cross_region import cross_region_markdown, matched_advantage, success_by_seed

LOG = logging.getLogger(__name__)


def cross_region(smk: Any) -> None:
    """Pair every family's conditions over seeds and write the tables, the figure and ``summary.md``."""
    conditions = [dict(info) for info in smk.params.conditions]
    by_seed = {info["experiment"]: pd.read_csv(path) for info, path in zip(conditions, smk.input.by_seed)}
    success = success_by_seed(by_seed, conditions)
    advantage = matched_advantage(success, smk.params.interval)
    sizes = {Path(path).parent.parent.name: read_json(path)["size_match"] for path in smk.input.size_matched}
    atomic.write_csv(smk.output.success, success)
    atomic.write_csv(smk.output.advantage, advantage)
    atomic.write_text(smk.output.summary, cross_region_markdown(success, advantage, conditions, smk.params.interval,
                                                                sizes))
    fig.cross_region_success(success, options=fig.FigureOptions.from_config(smk.params.options),
                             synthetic=any(info["synthetic"] for info in conditions), path=Path(smk.output.figure))
    LOG.info("cross-region: %d success rows, %d paired comparisons", len(success), len(advantage))
