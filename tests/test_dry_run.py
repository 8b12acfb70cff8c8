"""``snakemake -n`` on a fresh directory: exactly the jobs the config implies, and not one file written.

The plan is computed here from the config (models of the default set, controls x seeds, models x seeds x
train sizes with the sample-efficiency subsets only for ``task.sample_efficiency_models`` in the run, one
task split per split of the plan, one job per figure) and compared with Snakemake's job stats.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import DEFAULT_MODELS_OVERRIDES, job_counts, only_experiment, run_snakemake, write_config

pytestmark = pytest.mark.workflow

DEFAULT_MODELS = ["cx_bpu", "no_recurrence", "random", "degree_shuffle", "weight_shuffle", "random_dale",
                  "degree_shuffle_dale", "weight_shuffle_dale", "gru", "gru_matched", "mean_predictor"]
CONTROLS = {"no_recurrence", "random", "degree_shuffle", "weight_shuffle", "random_dale", "degree_shuffle_dale",
            "weight_shuffle_dale"}
FIGURE_COUNT = 4   # error_vs_sequence_length, loss_curve, error_vs_noise, sample_efficiency
SUBSTRATE_JOBS = {"synthetic_cx": 1, "pools": 1, "matrices": 1, "k_estimate": 1, "graph_metadata": 1}
EXPERIMENT_JOBS = {"aggregate": 1, "data_validation": 1, "bpu_validation": 1, "control_validation": 1,
                   "figure": FIGURE_COUNT, "summary": 1, "sweep_statistics": 1, "manifest": 1}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("dry_run")
    write_config(workdir, DEFAULT_MODELS_OVERRIDES)
    return workdir


def _tree(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` except Snakemake's own ``.snakemake/``, with the content and mtime of files."""
    tree = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] == ".snakemake":
            continue
        tree[str(rel)] = ("dir",) if path.is_dir() else (path.stat().st_mtime_ns, path.read_bytes())
    return tree


def _dry_run(workdir: Path, *targets: str) -> dict[str, int]:
    """Job stats of ``snakemake -n [targets]``, after checking that it wrote nothing in ``workdir``."""
    before = _tree(workdir)
    proc = run_snakemake(workdir, "-n", *targets)
    after = _tree(workdir)
    assert after == before, f"the dry run changed {sorted(set(after) ^ set(before)) or 'file contents'}"
    assert "This was a dry-run" in proc.stdout + proc.stderr
    return job_counts(proc.stdout)


def _expected(workdir: Path) -> dict[str, int]:
    """Jobs per rule, from the config: substrate, controls, splits, training jobs and experiment jobs."""
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    task = config["task"]
    models = list(only_experiment(workdir).models)
    assert models == DEFAULT_MODELS   # the default set (resolved_models), so the counts below test the plan
    seeds = config["seeds"]
    n_train = task["train"]["count"]
    subsets = {max(1, round(f * n_train)) for f in task["sample_efficiency_fractions"]} - {n_train}
    se_models = [m for m in task["sample_efficiency_models"] if m in models]
    assert subsets and se_models and len(se_models) < len(models)
    splits = 2 + len(task["test"]["T"]) + len(task["test_noise"]["noise"])   # train, val, test per T, noisy per sd
    return {**SUBSTRATE_JOBS,
            "control": len(CONTROLS) * len(seeds),
            "task_split": splits,
            "train_model": len(models) * len(seeds) + len(se_models) * len(seeds) * len(subsets),
            **EXPERIMENT_JOBS}


def test_dry_run_plans_every_job_of_the_config(fresh: Path) -> None:
    assert set(only_experiment(fresh).controls) == CONTROLS
    plan = _dry_run(fresh)
    assert plan == {**_expected(fresh), "all": 1}, plan


def test_dry_run_of_one_experiment_plans_the_same_jobs(fresh: Path) -> None:
    name = only_experiment(fresh).name
    plan = _dry_run(fresh, name)
    assert plan == {**_expected(fresh), name: 1}, plan


def test_dry_run_of_the_controls_target_plans_only_what_controls_need(fresh: Path) -> None:
    plan = _dry_run(fresh, "controls")
    assert plan == {"synthetic_cx": 1, "matrices": 1, "control": _expected(fresh)["control"], "controls": 1}, plan


def test_dry_runs_leave_the_fresh_directory_as_it_was(fresh: Path) -> None:
    assert sorted(_tree(fresh)) == ["config.yaml"]
