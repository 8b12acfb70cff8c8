"""Rules of ``rules/report.smk``: the three validation reports of an experiment.

Every line of these reports is recomputed from stored artifacts; each PASS comes from a check that
can fail (docs/departures.md#computed-checks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .. import atomic
from ..atomic import read_json
from ..checks import render_report
from ..reports.validation import (bpu_validation_lines, control_paths_by_key, control_validation_lines,
                                  data_validation_lines, model_surface_lines, preamble, split_lines,
                                  training_comparability_lines)


def data_validation(smk: Any) -> None:
    """Exports, pools, graph arrays and task splits are complete, consistent and leak-free."""
    lines = data_validation_lines(Path(smk.input.exports[0]).parent, smk.input.pools, smk.input.metadata,
                                  smk.input.arrays)
    lines += split_lines(smk.input.splits, dict(smk.params.task))
    text = render_report("Data Validation", lines, preamble(read_json(smk.input.metadata)))
    atomic.write_text(smk.output[0], text)


def bpu_validation(smk: Any) -> None:
    """The matrices, K and the model's trainable surface are what the experiment claims."""
    graph_dir = Path(smk.input.metadata).parent
    lines = bpu_validation_lines(graph_dir, smk.input.connections, smk.input.metadata, k_min=smk.params.k_min,
                                 k_max=smk.params.k_max, spectral_kwargs=dict(smk.params.spectral))
    lines += model_surface_lines(graph_dir, smk.input.pools, smk.input.k, task_cfg=dict(smk.params.task),
                                 train_mode=smk.params.mode, dense_max_neurons=smk.params.dense_max_neurons,
                                 model_name=smk.params.primary, plasticity=dict(smk.params.plasticity))
    text = render_report("BPU Validation", lines, preamble(read_json(smk.input.metadata)))
    atomic.write_text(smk.output[0], text)


def control_validation(smk: Any) -> None:
    """Every control of every trained seed has the properties it claims, and all models trained comparably."""
    metadata = read_json(smk.input.metadata)
    graph_dir = Path(smk.input.metadata).parent
    paths = control_paths_by_key(smk.input.controls)
    lines = control_validation_lines(graph_dir, paths, rho_target=smk.params.rho_target,
                                     spectral_kwargs=dict(smk.params.spectral))
    lines += training_comparability_lines(pd.read_csv(smk.input.by_seed), metadata, paths)
    atomic.write_text(smk.output[0], render_report("Control Validation", lines, preamble(metadata)))
