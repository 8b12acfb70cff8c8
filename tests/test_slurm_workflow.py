"""profiles/slurm against a real scheduler: a tiny experiment submitted through the official Slurm executor
plugin to a single-node Slurm started for the test ends with the same numbers as a local run."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, job_counts, job_dir, only_experiment, run_snakemake, write_config
from slurm_cluster import SlurmUnavailable, check_available, local_slurm

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

PROFILE = REPO / "profiles" / "slurm"
# One seed, one model (and the mean predictor, which asks for no GPU), one test length and no noisy test set:
# nine jobs, each one Slurm job.
OVERRIDES = {"seeds": [0], "models": ["cx_bpu"],
             "task": {"sample_efficiency_fractions": [1.0], "test": {"T": [20]}, "test_noise": {"noise": []}}}
JOB_MEM_MB = 300                    # the profile asks for 8-32 GB per job; the test node declares far less
FAKE_GPUS = 2                       # gres "gpu" with no hardware behind it: `--gpus=1` is scheduled, torch uses the CPU
WALL_CLOCK = re.compile(r"latency|seconds|elapsed|duration|wall", re.IGNORECASE)   # columns that measure time taken
COMMENT = re.compile(r"^rule_(?P<rule>.+?)(?:_wildcards_(?P<wildcards>.*))?$")     # the plugin's `sbatch --comment`


def _profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def _partitions(profile: dict) -> tuple[str, ...]:
    names = [profile["default-resources"]["slurm_partition"]]
    names += [r["slurm_partition"] for r in profile.get("set-resources", {}).values() if "slurm_partition" in r]
    return tuple(dict.fromkeys(names))


def _value(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _resource_args(profile: dict) -> list[str]:
    """The profile's own resources with memory scaled to the test node. A command-line
    --default-resources/--set-resources replaces the profile's whole key, so every entry is passed again."""
    defaults = {**profile["default-resources"], "mem_mb": JOB_MEM_MB}
    per_rule = {rule: {**res, "mem_mb": JOB_MEM_MB} for rule, res in profile.get("set-resources", {}).items()}
    return (["--default-resources", *(f"{k}={_value(v)}" for k, v in defaults.items())]
            + ["--set-resources", *(f"{rule}:{k}={_value(v)}" for rule, res in per_rule.items() for k, v in res.items())])


@pytest.fixture
def slurm(monkeypatch: pytest.MonkeyPatch):
    try:
        check_available()
    except SlurmUnavailable as why:
        if os.environ.get("CONNECTOME_BPU_REQUIRE_SLURM") == "1":      # set by .ci/run, which installs Slurm
            pytest.fail(f"CONNECTOME_BPU_REQUIRE_SLURM=1 but no Slurm test cluster can start: {why}")
        pytest.skip(f"cannot start a Slurm test cluster here: {why}")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("Slurm is installed but snakemake-executor-plugin-slurm is not: pip install -e '.[test]'")
    with local_slurm(partitions=_partitions(_profile()), gpus=FAKE_GPUS, memory_mb=2048) as cluster:
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        yield cluster


def _metrics(workdir: Path) -> dict[Path, pd.DataFrame]:
    found = sorted(workdir.glob("results/**/metrics.csv"))
    assert found, f"no results/**/metrics.csv under {workdir}"
    return {path.relative_to(workdir): pd.read_csv(path) for path in found}


def _metrics_targets(workdir: Path) -> list[str]:
    """The metrics.csv of every training job of the experiment (where the path scheme of docs/paths.md puts them)."""
    return sorted(str((job_dir(workdir, model, seed, n_train) / "metrics.csv").relative_to(workdir))
                  for model, seed, n_train in only_experiment(workdir).jobs())


def test_slurm_profile_runs_the_workflow_with_local_results(slurm, tmp_path: Path):
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    for workdir in (local, cluster):
        workdir.mkdir()
        write_config(workdir, OVERRIDES)
    # Up to the training jobs' metrics (training and everything it needs); aggregation, reports and figures
    # would only add more default-resource jobs of the kind already covered.
    targets = _metrics_targets(cluster)
    assert targets == _metrics_targets(local) and len(targets) == 2, targets
    # The local run of the same config in a fresh directory logs the plan both runs execute.
    planned = job_counts(run_snakemake(local, *targets).stderr)
    assert planned.get("train_model") == 2 and "control" not in planned, planned

    profile = _profile()
    logdir = tmp_path / "slurm_logs"
    started = time.monotonic()
    proc = run_snakemake(
        cluster, *targets, "--profile", str(PROFILE), *_resource_args(profile),
        "--slurm-status-command", "squeue",              # no accounting database: job states come from squeue
        "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",          # a tiny DAG: do not wait 10 s between polls
        "--slurm-logdir", str(logdir), "--slurm-keep-successful-logs",
        "--latency-wait", "5", check=False, timeout=420)
    elapsed = time.monotonic() - started
    print(f"snakemake --profile profiles/slurm: {elapsed:.0f} s")      # visible with pytest -s
    jobs = slurm.jobs()
    if proc.returncode != 0:
        slurm_logs = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}"
                               for log in sorted(logdir.rglob("*.log")))
        pytest.fail(f"snakemake --profile profiles/slurm failed ({proc.returncode}) after {elapsed:.0f} s\n"
                    f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}\njobs: {jobs}\n{slurm_logs}\n{slurm.logs()}")

    # Every job went through Slurm, finished, and asked for what the profile says.
    assert jobs and all(job["state"] == "COMPLETED" for job in jobs), jobs
    parsed = [(job, COMMENT.match(job["comment"])) for job in jobs]
    assert all(match for _, match in parsed), jobs
    assert Counter(match["rule"] for _, match in parsed) == planned, (jobs, planned)     # none ran locally
    default_partition = profile["default-resources"]["slurm_partition"]
    train_partition = profile["set-resources"]["train_model"].get("slurm_partition", default_partition)
    for job, match in parsed:
        expected = train_partition if match["rule"] == "train_model" else default_partition
        assert job["partition"] == expected, (job, expected)
        if match["rule"] == "train_model":
            # The rule's `resources: gpu=1` became a GPU the scheduler granted; mean_predictor declares gpu=0.
            details = slurm.job_details(job["id"])
            wants_gpu = "mean_predictor" not in (match["wildcards"] or "")
            assert bool(re.search(r"TresPerJob=\S*gres[:/]gpu[:=]1\b", details)) == wants_gpu, details

    # Same numbers as the local run (wall-clock columns aside).
    local_metrics, slurm_metrics = _metrics(local), _metrics(cluster)
    assert local_metrics.keys() == slurm_metrics.keys()
    for path, expected in local_metrics.items():
        got = slurm_metrics[path]
        assert list(got.columns) == list(expected.columns), path
        keep = [c for c in expected.columns if not WALL_CLOCK.search(c)]
        assert len(keep) > len(expected.columns) // 2, f"{path}: most columns look like timings: {expected.columns}"
        pd.testing.assert_frame_equal(got[keep], expected[keep], check_exact=True, obj=str(path))
