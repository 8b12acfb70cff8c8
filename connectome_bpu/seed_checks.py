"""The seed-system checks, run one seed at a time: which module and function run each check, at which preset.

Each learning rule first reproduces its own system's result on its own task (docs/learning_rule_arms.md#seed-system-checks).
A check's code (its run and plot functions, ``DEFAULTS`` and ``FAST``) lives in its own module, loaded by name;
how its per-seed tables are judged is :mod:`connectome_bpu.seed_check_report`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

from . import atomic


@dataclass(frozen=True)
class SeedCheck:
    module: str                       # connectome_bpu.<module> holds the run and plot functions and the presets
    run: str
    presets: tuple[str, str]          # (default, fast) attribute names of the module


CHECKS: dict[str, SeedCheck] = {
    "yin_yang": SeedCheck("yin_yang", "run_yin_yang_check", ("DEFAULTS", "FAST")),
    "line_drawing": SeedCheck("line_drawing", "run_line_drawing_check", ("DEFAULTS", "FAST")),
    "gle_lag": SeedCheck("gle_checks", "run_lag_check", ("LAG_DEFAULTS", "LAG_FAST")),
    "gle_teacher": SeedCheck("gle_teacher", "run_teacher_check", ("DEFAULTS", "FAST")),
    "mnist1d": SeedCheck("gle_checks", "run_mnist1d_check", ("MNIST1D_DEFAULTS", "MNIST1D_FAST")),
}


def check_module(name: str) -> str:
    """The package module that holds check ``name``'s code. It is loaded by name, so the rules add its code
    hash to theirs (``code_deps.module_code_hash``): editing one check reruns that check only."""
    return f"connectome_bpu.{CHECKS[name].module}"


def load_check_module(name: str) -> ModuleType:
    return importlib.import_module(check_module(name))


def check_settings(name: str, preset: str) -> dict:
    """The settings of check ``name`` at ``preset`` ("default" or "fast")."""
    return dict(getattr(load_check_module(name), CHECKS[name].presets[0 if preset == "default" else 1]))


def run_seed_check_seed(name: str, *, preset: str, seed: int, outputs: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """Every arm of check ``name`` on one seed: its rows of the per-seed table and its learning curves.

    One job per seed lets a check's seeds run side by side, and an interrupted check resumes at the seeds
    that have not finished.
    """
    tables = getattr(load_check_module(name), CHECKS[name].run)(check_settings(name, preset), [int(seed)])
    atomic.write_csv(outputs["by_seed"], tables["by_seed"])
    atomic.write_csv(outputs["curves"], tables["curves"])
    return tables
