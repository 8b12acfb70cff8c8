"""Several experiments in one DAG (configs/structure.yaml), run by the real snakemake on a copy of this
checkout: shared artifacts built once, per-experiment targets, exact dry-run plans after a deletion,
and staleness of package code decided by the package's own imports, not by paths or timestamps."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from connectome_bpu.code_deps import rule_modules
from conftest import REPO, experiment_dir, job_counts, job_dir, run_snakemake, write_config

pytestmark = pytest.mark.workflow

NAMES = ("structure_frozen", "structure_observed", "structure_cartesian")
# One seed, one test length and one noise level: what is shared, targeted and replanned does not depend on more.
TINY = {"seeds": [0], "models": ["cx_bpu", "random"],
        "task": {"sample_efficiency_fractions": [1.0], "test": {"T": [20]}, "test_noise": {"noise": [0.1]}}}
GRAPH_RULES = {"synthetic_cx", "pools", "matrices", "k_estimate", "graph_metadata", "control"}


def _copy_checkout(dest: Path, source: Path = REPO) -> Path:
    """The tracked and new files of this checkout at another path, as a fresh clone would be (new mtimes)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        if (source / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, dest / name)   # copy, not copy2: every file gets a new mtime
    return dest


@pytest.fixture(scope="module")
def structure(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(checkout copy, work directory, plan) after one complete run of configs/structure.yaml; the plan is the
    job stats the run logs before its first job (the same table a dry run prints)."""
    repo = _copy_checkout(tmp_path_factory.mktemp("checkout"))
    workdir = tmp_path_factory.mktemp("structure")
    overrides = yaml.safe_load((REPO / "configs/structure.yaml").read_text())
    write_config(workdir, {**TINY, **overrides})
    plan = job_counts(run_snakemake(workdir, repo=repo).stderr)
    return repo, workdir, plan


def test_shared_artifacts_are_planned_once(structure):
    _, _, plan = structure
    assert plan["synthetic_cx"] == plan["pools"] == plan["matrices"] == plan["k_estimate"] == 1, plan
    assert plan["control"] == 1, plan                   # random x 1 seed, shared by all three experiments
    assert plan["task_split"] == 2 * 4, plan            # two task variants (polar, cartesian), 4 splits each
    # trained: 2 models x 1 seed x 3 experiments; the untrained mean predictor once per task variant x seed
    assert plan["train_model"] == 6 + 2, plan
    for rule in ("aggregate", "summary", "manifest", "data_validation", "bpu_validation", "control_validation"):
        assert plan[rule] == 3, (rule, plan)
    assert plan["figure"] == 3 * 4


def test_every_experiment_has_its_own_results(structure):
    _, workdir, _ = structure
    for name in NAMES:
        out = experiment_dir(workdir, name)
        by_seed = pd.read_csv(out / "metrics_by_seed.csv")
        assert set(by_seed["model"]) == {"cx_bpu", "random", "mean_predictor"} and set(by_seed["seed"]) == {0}
        assert (out / "summary.md").is_file() and (out / "run_manifest.json").is_file()
        for report in ("data_validation", "bpu_validation", "control_validation"):
            assert "- FAIL:" not in (out / "reports" / f"{report}.md").read_text()
    observed = pd.read_csv(experiment_dir(workdir, "structure_observed") / "metrics_by_seed.csv")
    assert set(observed.loc[observed["model"] == "cx_bpu", "recurrent_train_mode"]) == {"observed"}
    cartesian = pd.read_csv(experiment_dir(workdir, "structure_cartesian") / "metrics_by_seed.csv")
    assert set(cartesian["task"]) == {"cartesian"}


def test_second_run_does_nothing_and_a_moved_checkout_reruns_nothing(structure, tmp_path):
    """A second run from a copy of the checkout at another path, with newer files of the same content, has
    nothing to do. That is also the second run from the checkout that built the results: its files are older and
    its path is the one recorded, so anything stale there (a missing output, a changed parameter or code hash)
    would be stale from the copy too."""
    repo, workdir, _ = structure
    elsewhere = _copy_checkout(tmp_path / "another" / "clone", repo)   # other path, newer files, same content
    assert "Nothing to be done" in run_snakemake(workdir, "-n", repo=elsewhere).stdout


def test_one_experiment_is_a_target(structure):
    """Each experiment's name is a target of its own (an unknown target would stop the dry run)."""
    repo, workdir, _ = structure
    assert "Nothing to be done" in run_snakemake(workdir, "-n", *NAMES, repo=repo).stdout


def test_deleting_one_jobs_metrics_plans_exactly_that_job_and_its_dependents(structure):
    repo, workdir, _ = structure
    metrics = job_dir(workdir, "random", 0, 48, "structure_observed") / "metrics.csv"
    saved = metrics.read_bytes()
    metrics.unlink()
    try:
        plan = job_counts(run_snakemake(workdir, "-n", repo=repo).stdout)
        assert plan == {"train_model": 1, "aggregate": 1, "control_validation": 1, "summary": 1, "sweep_statistics": 1,
                        "figure": 4, "manifest": 1, "all": 1}, plan
    finally:
        metrics.write_bytes(saved)


def test_the_training_code_closure_is_derived_from_imports():
    training = set(rule_modules("train", "train_model"))
    assert {"connectome_bpu.training", "connectome_bpu.training_job", "connectome_bpu.runtime",
            "connectome_bpu.models", "connectome_bpu.pools", "connectome_bpu.graph", "connectome_bpu.signs",
            "connectome_bpu.spectral", "connectome_bpu.exports", "connectome_bpu.matrix"} <= training
    assert "connectome_bpu.gpu" not in training               # where a job runs never changes its numbers
    assert "connectome_bpu.training" not in set(rule_modules("graph", "pools"))


def _append(path: Path, text: str) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original + text.encode())
    return original


@pytest.mark.parametrize("module, reruns_training", [("training.py", True), ("runtime.py", True),
                                                      ("gpu.py", False)])
def test_editing_a_module_reruns_exactly_the_rules_that_import_it(structure, module, reruns_training):
    """training.py is imported only by the training job; runtime.py only indirectly (through models.py);
    gpu.py claims devices and is excluded. None of them reaches the graph cache."""
    repo, workdir, _ = structure
    path = repo / "connectome_bpu" / module
    original = _append(path, "\n# an edit that changes no behaviour, but the file's content\n")
    try:
        plan = job_counts(run_snakemake(workdir, "-n", repo=repo).stdout)
    finally:
        path.write_bytes(original)
    if not reruns_training:
        assert plan == {}, plan
        return
    assert not GRAPH_RULES & set(plan) and "task_split" not in plan, plan
    assert plan["train_model"] == 8 and plan["aggregate"] == 3 and plan["summary"] == 3, plan
