"""Shared fixtures: a scratch working directory where the real ``snakemake`` runs on a tiny config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

REPO = Path(__file__).resolve().parent.parent

# Small enough that a full graph + controls + reports run takes seconds on 2 cores.
TINY_OVERRIDES = {
    "synthetic_cx": {"copies": 2, "seed": 0, "background_density": 0.005},
    "seeds": [0, 1],
    "task": {"train": {"count": 48, "T": 20}, "val": {"count": 16, "T": 20},
             "test": {"count": 16, "T": [20, 40]}, "test_noise": {"count": 16, "T": 40, "noise": [0.0, 0.1]},
             "sample_efficiency_fractions": [0.5, 1.0]},
    "training": {"epochs": 2, "batch_size": 16, "threads": 1, "include_gru": False},
    "models": ["cx_bpu", "random", "no_recurrence"],
    "controls": {"dale": False},
}


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def support_adjacency(neurons: pd.DataFrame, connections: pd.DataFrame) -> sp.csr_matrix:
    """Binary support of an export with rows = pre, columns = post (edge direction pre -> post)."""
    ids = neurons["bodyId"].to_numpy()
    pre = np.searchsorted(ids, connections["bodyId_pre"].to_numpy())
    post = np.searchsorted(ids, connections["bodyId_post"].to_numpy())
    return sp.csr_matrix((np.ones(pre.size), (pre, post)), shape=(ids.size, ids.size))


def outside_roi_counts(exports, primary_rois) -> pd.DataFrame:
    """Check that an export's roi_counts agree with its connections and neuron totals; return its rows
    outside the primary ROIs (with each neuron's type), which the pool rule reads as outside input/output.

    Inside the primary ROIs a neuron's pre/post counts equal its summed outgoing/incoming edge weights,
    and over all ROIs they equal its totals in neurons.csv.
    """
    neurons, roi_counts, connections = exports.neurons, exports.roi_counts, exports.connections
    inside = roi_counts[roi_counts["roi"].isin(primary_rois)].groupby("bodyId")[["pre", "post"]].sum()
    inside = inside.reindex(neurons["bodyId"], fill_value=0)
    out_weight = connections.groupby("bodyId_pre")["weight"].sum().reindex(neurons["bodyId"], fill_value=0)
    in_weight = connections.groupby("bodyId_post")["weight"].sum().reindex(neurons["bodyId"], fill_value=0)
    np.testing.assert_array_equal(inside["pre"].to_numpy(), out_weight.to_numpy())
    np.testing.assert_array_equal(inside["post"].to_numpy(), in_weight.to_numpy())
    totals = roi_counts.groupby("bodyId")[["pre", "post"]].sum().reindex(neurons["bodyId"], fill_value=0)
    np.testing.assert_array_equal(totals["pre"].to_numpy(), neurons["pre"].to_numpy())
    np.testing.assert_array_equal(totals["post"].to_numpy(), neurons["post"].to_numpy())
    return roi_counts[~roi_counts["roi"].isin(primary_rois)].merge(neurons[["bodyId", "type"]], on="bodyId")


def write_config(workdir: Path, overrides: dict | None = None) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    deep_update(config, TINY_OVERRIDES)
    deep_update(config, overrides or {})
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def resolved(workdir: Path) -> dict:
    """The experiments of ``workdir/config.yaml``, resolved exactly as the workflow resolves them."""
    from connectome_bpu.config import validate_config
    from connectome_bpu.experiments import resolve_experiments

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    return resolve_experiments(validate_config(config))


def only_experiment(workdir: Path):
    experiments = resolved(workdir)
    assert len(experiments) == 1, list(experiments)
    return next(iter(experiments.values()))


def experiment_dir(workdir: Path, name: str | None = None) -> Path:
    """``results/experiments/<name>`` (the only experiment of the config when no name is given)."""
    return workdir / "results" / "experiments" / (name or only_experiment(workdir).name)


def job_dir(workdir: Path, model: str, seed: int, n_train: int, name: str | None = None) -> Path:
    """The directory of one training job of an experiment (docs/paths.md)."""
    experiment = resolved(workdir)[name] if name else only_experiment(workdir)
    return (workdir / "results" / experiment.substrate / "runs" / experiment.task_variant
            / experiment.training_variant(model) / model / f"seed{seed}" / f"n{n_train}")


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 600,
                  repo: Path = REPO) -> subprocess.CompletedProcess:
    """The real snakemake CLI, with the Snakefile of ``repo`` (this checkout by default), run inside ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
           "--cores", "2", *args]
    env = dict(os.environ, MPLBACKEND="Agg")
    # Every job is a fresh interpreter: let them share compiled bytecode of the package, as a user's runs do,
    # even where the surrounding shell disables writing it (0.2 s of CPU per job).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of ``snakemake -n`` into {rule: count}."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_config(tmp_path)
    return tmp_path


# The models a user gets from config.yaml's `default` preset with both GRUs, laid over TINY_OVERRIDES' tiny
# sizes, on the fully labelled synthetic_cx (signed under signed_policy auto), so that `controls.dale: auto`
# adds the Dale-preserving controls and the workflow tests cover them too.
DEFAULT_MODELS_OVERRIDES = {"models": None, "comparison": "default", "controls": {"dale": "auto"},
                            "training": {"include_gru": True}, "synthetic_cx": {"transmitter_coverage": 1.0}}


def write_tiny_graph_cache(root: Path) -> Path:
    """A one-copy synthetic CX (fully labelled, so its primary matrix is signed) and its graph cache, built by the
    pipeline's own functions under ``root``; returns the graph directory."""
    from connectome_bpu import atomic
    from connectome_bpu.depth import estimate_k
    from connectome_bpu.exports import load_exports
    from connectome_bpu.graph import assemble_metadata, build_matrices
    from connectome_bpu.pools import assign_region_pools, pool_indices
    from connectome_bpu.sources.synthetic_cx import write_synthetic_cx

    rois = ["EB", "PB", "FB", "NO"]
    write_synthetic_cx(root / "exports", copies=1, seed=0, background_density=0.0, transmitter_coverage=1.0)
    exports = load_exports(root / "exports")
    graph = root / "graph"
    info = build_matrices(root / "exports", graph, connectome="synthetic_cx", rho_target=0.95, signed_policy="auto",
                          sign_coverage_threshold=0.95,
                          spectral_kwargs={"power_tolerance": 1e-9, "power_max_iterations": 5000})
    pools = assign_region_pools(exports.neurons, exports.roi_counts, rois)
    atomic.write_csv(graph / "pool_assignments.csv", pools)
    sensory, _, output = pool_indices(pools)
    k = estimate_k(sp.load_npz(graph / "adjacency_unsigned.npz").tocsr(), sensory, output).as_dict()
    atomic.write_json(graph / "k_estimate.json", k)
    atomic.write_json(graph / "graph_metadata.json", assemble_metadata(
        info, pools, k, primary_rois=rois, whole_brain_pool_fraction=0.05, synthetic=True))
    return graph


# The files whose module fixtures take longest (measured with --durations), longest first: started first, they
# run side by side instead of one of them starting last and running on alone. Only the order depends on this.
LONGEST_FILES = ("test_families_workflow.py", "test_evidence_workflow.py", "test_workflow.py",
                 "test_learning_rules_workflow.py", "test_experiments_workflow.py", "test_determinism_workflow.py",
                 "test_slurm_workflow.py", "test_flywire_workflow.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, then the other files that run the real snakemake (any test marked ``workflow``
    or ``slurm``), then the rest; each file whole and in its own order.

    Workers take whole files in collection order, so the many short unit tests fill the gaps at the end.
    """
    def runs_snakemake(item: pytest.Item) -> bool:
        return any(item.iter_markers("workflow")) or any(item.iter_markers("slurm"))

    heavy = {item.path for item in items if runs_snakemake(item)}

    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.path.name
        return (LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES), item.path not in heavy)

    items.sort(key=rank)
