"""Learning-rule arms through the real workflow: their jobs, their report, what reruns, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import job_counts, job_dir, run_snakemake, write_config

pytestmark = pytest.mark.workflow

ARMS = {"seeds": [0, 1], "models": ["cx_bpu", "random"],
        "task": {"test": {"count": 16, "T": [20]}, "test_noise": {"count": 16, "T": 20, "noise": [0.0]},
                 "sample_efficiency_fractions": [1.0]},
        "training": {"learning_rules": {"arms": ["bptt", "pal", "readout"]}},
        "seed_checks": {"checks": ["yin_yang"], "seeds": [0, 1], "preset": "fast"}}


@pytest.fixture(scope="module")
def arms_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("arms")
    write_config(workdir, ARMS)
    run_snakemake(workdir, "all", timeout=900)
    return workdir


def test_every_arm_trains_every_core_and_seed_in_its_own_variant(arms_run):
    for arm in ("pal", "readout"):
        for model in ("cx_bpu", "random"):
            job = job_dir(arms_run, f"{model}+{arm}", 1, 48)
            assert job.parent.parent.parent.name.endswith(f"-{arm}"), job
            history = pd.read_csv(job / "loss_history.csv")
            assert len(history) == 2
            if arm != "readout":   # the floor's W_in never moves: no update to compare with BPTT's
                assert history["grad_cosine"].between(-1, 1).all()
    pal = pd.read_csv(job_dir(arms_run, "cx_bpu+pal", 0, 48) / "loss_history.csv")
    assert pal["feedback_angle_deg"].between(0, 180).all()
    plain = pd.read_csv(job_dir(arms_run, "cx_bpu", 0, 48) / "loss_history.csv")
    assert plain["grad_cosine"].isna().all()


def test_the_report_pairs_each_arm_within_itself_and_answers_the_questions(arms_run):
    experiment = arms_run / "results" / "experiments" / "synthetic_cx_cx_polar_bump_frozen"
    paired = pd.read_csv(experiment / "paired_differences.csv")
    pal = paired[paired["primary"] == "cx_bpu+pal"]
    assert set(pal["control"]) == {"random+pal", "mean_predictor"}
    assert set(paired[paired["primary"] == "cx_bpu"]["control"]) == {"random", "mean_predictor"}
    comparisons = pd.read_csv(experiment / "learning_rules" / "arm_comparisons.csv")
    questions = set(comparisons["question"])
    assert {"input credit benefit", "input credit share", "connectome minus control",
            "interaction with bptt"} <= questions
    assert (comparisons["n_seeds"] <= 2).all()
    summary = (experiment / "learning_rules" / "summary.md").read_text()
    assert "How much of BPTT each arm keeps" in summary and "**In short.**" in summary
    for figure in ("arm_learning_curves.png", "gradient_fidelity.png"):
        assert (experiment / "learning_rules" / figure).stat().st_size > 10_000
    # the experiment's own summary stays about the models every experiment has
    assert "+pal" not in (experiment / "summary.md").read_text()


def test_the_seed_check_writes_its_tables_and_computed_verdicts(arms_run):
    check = arms_run / "results" / "learning_rules" / "seed_checks" / "yin_yang"
    by_seed = pd.read_csv(check / "by_seed.csv")
    assert set(by_seed["seed"]) == {0, 1} and {"pal", "fa", "bp"} <= set(by_seed["arm"])
    for seed in (0, 1):   # one job per seed, whose rows the check gathers unchanged
        own = pd.read_csv(check / "seeds" / f"seed{seed}" / "by_seed.csv")
        assert set(own["seed"]) == {seed}
        pd.testing.assert_frame_equal(own.reset_index(drop=True),
                                      by_seed[by_seed["seed"] == seed].reset_index(drop=True))
    summary = (check / "summary.md").read_text()
    assert "**PASS**" in summary or "**FAIL**" in summary
    assert (check / "yin_yang.png").stat().st_size > 10_000


def test_changing_one_arm_knob_replans_only_that_arm(arms_run):
    (arms_run / "edited.yaml").write_text(yaml.safe_dump({"training": {"learning_rules": {"pal": {"lr": 0.5}}}}))
    plan = run_snakemake(arms_run, "all", "-n", "--configfile", str(arms_run / "edited.yaml")).stdout
    counts = job_counts(plan)
    assert counts["train_model"] == 4, counts   # cx_bpu+pal and random+pal, two seeds
    lines = plan.splitlines()
    trained = [next(out for out in lines[i:] if out.strip().startswith("output:"))
               for i, line in enumerate(lines) if line.strip() == "rule train_model:"]
    assert len(trained) == 4 and all("+pal/" in line for line in trained), trained


def test_a_third_seed_runs_only_that_seed_of_the_check(arms_run):
    (arms_run / "more_seeds.yaml").write_text(yaml.safe_dump({"seed_checks": {"seeds": [0, 1, 2]}}))
    plan = run_snakemake(arms_run, "seed_checks", "-n", "--configfile", str(arms_run / "more_seeds.yaml")).stdout
    assert job_counts(plan) == {"seed_check_seed": 1, "seed_check": 1, "seed_checks": 1}, job_counts(plan)
    assert "seeds/seed2/by_seed.csv" in plan


def test_an_arm_that_cannot_run_stops_the_plan_before_any_job(tmp_path):
    write_config(tmp_path, {"training": {"train_recurrent": "observed",
                                         "learning_rules": {"arms": ["bptt", "fa"]}}})
    proc = run_snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "'training.learning_rules.arms' (fa) and 'training.train_recurrent' (observed)" in output
    assert "Job stats" not in output
